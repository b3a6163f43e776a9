#!/usr/bin/env python3
"""Writes tiny AQLM folders in the published Hugging Face layout, the way the authors' code
makes them, and their reference logits, for tests/format (the C++ side reads them with our
loader and runtime and must agree).

What "the way the authors' code does" means here (read from github Vahe1994/AQLM,
convert_to_hf.py and inference_lib/src/aqlm/utils.py; nothing copied):
  - codes: the unsigned B-bit index, then every index >= 2^(B-1) minus 2^B (their
    pack_int_data), stored as int8 when B <= 8, int16 when B <= 16; [out, in/g, M];
  - codebooks [M, 2^B, 1, g], scales [out, 1, 1, 1] and every other tensor as float16;
  - config.json: the base model's config (transformers' to_diff_dict style) plus
    quantization_config {quant_method aqlm, nbits_per_codebook, num_codebooks, out_group_size,
    in_group_size, linear_weights_not_to_quantize} and torch_dtype float16, where the list holds
    each layer's non-quantized parameters (layer by layer), then the model-level tensors
    (embedding, final norm, head) and lm_head.weight;
  - model.safetensors written by the safetensors package with {"format": "pt"} metadata, as
    transformers' save_pretrained does.

Folders (tests/fixtures/format/):
  published_2x8g8   Llama, 2 layers, every projection 2x8g8 (int8 codes, half of them negative),
                    untied head
  published_1x16g8  Llama, 1 layer, q_proj and down_proj 1x16g8 (int16 codes, half of them
                    negative), the other projections dense as listed in the config; tied head

Each gets reference.json: token ids and float64 logits from forward_reference.py's numpy
forward pass over its own reading of the folder (codes masked to B bits, REFERENCE.md 5).
Run: python3 scripts/reference/aqlm_format_published.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = REPO / "tests" / "fixtures" / "format"
sys.path.insert(0, str(HERE))
import forward_reference  # noqa: E402  (the runtime room's independent numpy forward)

PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def pack_codes(codes: np.ndarray, nbits: int) -> np.ndarray:
    """Unsigned indices -> the int8/int16 two's complement of B bits, as the authors store them."""
    packed = codes.astype(np.int64)
    packed[packed >= 2 ** (nbits - 1)] -= 2 ** nbits
    return packed.astype(np.int8 if nbits <= 8 else np.int16)


def base_config(hidden: int, ffn: int, layers: int, heads: int, kv: int, vocab: int, tied: bool) -> dict:
    """A Llama config.json as transformers 4.38 writes it (to_diff_dict keys, sorted)."""
    return {
        "_name_or_path": "tiny-llama-for-aqlm-studio-tests",
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": ffn,
        "max_position_embeddings": 128,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": tied,
        "torch_dtype": "float16",
        "transformers_version": "4.38.0",
        "use_cache": True,
        "vocab_size": vocab,
    }


def make(name: str, *, M: int, B: int, g: int, layers: int, quantized: tuple[str, ...], tied: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hidden, ffn, heads, kv, vocab = 64, 128, 4, 2, 97
    hd = hidden // heads
    config = base_config(hidden, ffn, layers, heads, kv, vocab, tied)
    shapes = {"self_attn.q_proj": (heads * hd, hidden, 3.0), "self_attn.k_proj": (kv * hd, hidden, 3.0),
              "self_attn.v_proj": (kv * hd, hidden, 1.0), "self_attn.o_proj": (hidden, heads * hd, 1.0),
              "mlp.gate_proj": (ffn, hidden, 1.0), "mlp.up_proj": (ffn, hidden, 1.0),
              "mlp.down_proj": (hidden, ffn, 1.0)}
    f16 = np.float16
    tensors: dict[str, np.ndarray] = {}
    not_quantized: list[str] = []
    for layer in range(layers):
        p = f"model.layers.{layer}."
        for proj in PROJECTIONS:
            out, inp, gain = shapes[proj]
            if proj in quantized:
                codes = rng.integers(0, 2 ** B, size=(out, inp // g, M))
                tensors[p + proj + ".codes"] = pack_codes(codes, B)
                # Codebooks ~ N(0, 1), scales ~ gain / sqrt(in * M): weights of a trained layer's size.
                tensors[p + proj + ".codebooks"] = rng.normal(0, 1, size=(M, 2 ** B, 1, g)).astype(f16)
                tensors[p + proj + ".scales"] = (gain * rng.uniform(0.5, 1.5, size=(out, 1, 1, 1))
                                                 / np.sqrt(inp * M)).astype(f16)
            else:
                tensors[p + proj + ".weight"] = (gain * rng.normal(0, 1 / np.sqrt(inp), size=(out, inp))).astype(f16)
                not_quantized.append(p + proj + ".weight")
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[p + norm + ".weight"] = rng.uniform(0.5, 1.5, size=hidden).astype(f16)
            not_quantized.append(p + norm + ".weight")
    tensors["model.embed_tokens.weight"] = rng.normal(0, 1, size=(vocab, hidden)).astype(f16)
    tensors["model.norm.weight"] = rng.uniform(0.5, 1.5, size=hidden).astype(f16)
    not_quantized += ["model.embed_tokens.weight", "model.norm.weight"]
    if not tied:
        tensors["lm_head.weight"] = rng.normal(0, 1 / np.sqrt(hidden), size=(vocab, hidden)).astype(f16)
    not_quantized.append("lm_head.weight")  # listed whether or not the head is tied
    config["quantization_config"] = {
        "quant_method": "aqlm", "nbits_per_codebook": B, "num_codebooks": M, "out_group_size": 1,
        "in_group_size": g, "linear_weights_not_to_quantize": not_quantized}

    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=4) + "\n")
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    W, cfg = forward_reference.read_hf_folder(folder)
    ids = [int(i) for i in np.random.default_rng(seed + 100).integers(0, vocab, size=11)]
    logits = forward_reference.logits(W, cfg, ids)
    negative = int(sum((t < 0).sum() for k, t in tensors.items() if k.endswith(".codes")))
    total = int(sum(t.size for k, t in tensors.items() if k.endswith(".codes")))
    (folder / "reference.json").write_text(json.dumps({
        "source": "scripts/reference/aqlm_format_published.py (numpy float64 via forward_reference.py)",
        "ids": ids, "logits": [[float(v) for v in row] for row in logits],
        "negative_codes": negative, "codes": total}) + "\n")
    print(f"{name}: {negative}/{total} stored codes negative, max |logit| {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    make("published_2x8g8", M=2, B=8, g=8, layers=2, quantized=PROJECTIONS, tied=False, seed=11)
    make("published_1x16g8", M=1, B=16, g=8, layers=1, quantized=("self_attn.q_proj", "mlp.down_proj"),
         tied=True, seed=12)
