#!/usr/bin/env python3
"""Writes tiny Hugging Face model folders with random weights for the runtime tests.

Each exercises what the small real models do not:
  tiny_qwen2    Qwen2: q/k/v biases, untied LM head, GQA 4/2, BF16 weights
  tiny_llama3   Llama-3: llama3 rope scaling (all three frequency bands), tied head, MQA 4/1, F16 weights
  tiny_mistral  Mistral: GQA 8/2, sliding window 5 (shorter than the test sequence), F32 weights
  tiny_aqlm_2x8   Llama, AQLM 2x8g8 (int8 codes: the lookup-table kernel), one projection kept dense
  tiny_aqlm_1x10  Qwen2 with biases, AQLM 1x10g4 (int16 codes, B > 8: the direct kernel)
Weights are drawn in float64, rounded to the stored type; the reference forward reads the
stored (rounded) values back. safetensors is written here directly (header + raw bytes)
because numpy has no bfloat16 for the python safetensors package.
Run through `forward_reference.py tiny`, which also writes each folder's reference.json.
`make_tiny_models.py --smollm2-shaped DIR` writes random SmolLM2-sized F16 and AQLM 2x8g8
folders for bench_runtime (AQLM_BENCH_MODEL=DIR/smollm2_shaped_aqlm_2x8).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float64 -> bfloat16 bit patterns, round to nearest even (via float32)."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """tensors: name -> (dtype "F32" | "F16" | "BF16" | "I8" | "I16", array)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, a = tensors[name]
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
        elif dtype == "I8":
            raw = a.astype("<i1").tobytes()
        elif dtype == "I16":
            raw = a.astype("<i2").tobytes()
        else:
            raw = to_bf16_bits(a).astype("<u2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make(folder: Path, config: dict, dtype: str, bias: bool, tied: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    H, F, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim", H // heads)

    def mat(out, inp):  # scaled like a trained layer so activations stay O(1)
        return rng.normal(0, 1 / np.sqrt(inp), size=(out, inp))

    t = {"model.embed_tokens.weight": rng.normal(0, 1, size=(V, H)),
         "model.norm.weight": rng.uniform(0.5, 1.5, size=H)}
    if not tied:
        t["lm_head.weight"] = mat(V, H)
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = rng.uniform(0.5, 1.5, size=H)
        t[p + "post_attention_layernorm.weight"] = rng.uniform(0.5, 1.5, size=H)
        # Larger q/k weights give peaked attention, so a wrong mask or rope shows in the logits.
        t[p + "self_attn.q_proj.weight"] = 3 * mat(heads * hd, H)
        t[p + "self_attn.k_proj.weight"] = 3 * mat(kv * hd, H)
        t[p + "self_attn.v_proj.weight"] = mat(kv * hd, H)
        t[p + "self_attn.o_proj.weight"] = mat(H, heads * hd)
        t[p + "mlp.gate_proj.weight"] = mat(F, H)
        t[p + "mlp.up_proj.weight"] = mat(F, H)
        t[p + "mlp.down_proj.weight"] = mat(H, F)
        if bias:
            for name, n in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
                t[p + f"self_attn.{name}.bias"] = rng.normal(0, 0.5, size=n)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(config, tie_word_embeddings=tied, torch_dtype={"F32": "float32", "F16": "float16",
                                                                 "BF16": "bfloat16"}[dtype])
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(folder / "model.safetensors", {k: (dtype, v) for k, v in t.items()})


def make_aqlm(folder: Path, config: dict, M: int, B: int, g: int, bias: bool, keep_dense: list[str],
              seed: int) -> None:
    """Random AQLM codes, fp16 codebooks and scales (REFERENCE.md section 5); other tensors F16."""
    rng = np.random.default_rng(seed)
    H, F, V = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    hd = config.get("head_dim", H // heads)
    t = {"model.embed_tokens.weight": ("F16", rng.normal(0, 1, size=(V, H))),
         "model.norm.weight": ("F16", rng.uniform(0.5, 1.5, size=H))}
    shapes = {"self_attn.q_proj": (heads * hd, H, 3.0), "self_attn.k_proj": (kv * hd, H, 3.0),
              "self_attn.v_proj": (kv * hd, H, 1.0), "self_attn.o_proj": (H, heads * hd, 1.0),
              "mlp.gate_proj": (F, H, 1.0), "mlp.up_proj": (F, H, 1.0), "mlp.down_proj": (H, F, 1.0)}
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = ("F16", rng.uniform(0.5, 1.5, size=H))
        t[p + "post_attention_layernorm.weight"] = ("F16", rng.uniform(0.5, 1.5, size=H))
        for name, (out, inp, gain) in shapes.items():
            if p + name in keep_dense:
                t[p + name + ".weight"] = ("F16", gain * rng.normal(0, 1 / np.sqrt(inp), size=(out, inp)))
            else:
                codes = rng.integers(0, 1 << B, size=(out, inp // g, M))
                # Stored as the two's complement of the unsigned index in int8 / int16.
                signed = np.where(codes >= (1 << (8 if B <= 8 else 16)) // 2, codes - (1 << (8 if B <= 8 else 16)), codes)
                t[p + name + ".codes"] = ("I8" if B <= 8 else "I16", signed)
                t[p + name + ".codebooks"] = ("F16", rng.normal(0, 1, size=(M, 1 << B, 1, g)))
                t[p + name + ".scales"] = ("F16", gain * rng.uniform(0.5, 1.5, size=(out, 1, 1, 1)) / np.sqrt(inp * M))
        if bias:
            for name, n in (("q_proj", heads * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
                t[p + f"self_attn.{name}.bias"] = ("F16", rng.normal(0, 0.5, size=n))
    folder.mkdir(parents=True, exist_ok=True)
    not_quantized = ["model.embed_tokens.weight", "lm_head.weight"] + [k + ".weight" for k in keep_dense]
    config = dict(config, tie_word_embeddings=True, torch_dtype="float16",
                  quantization_config=dict(quant_method="aqlm", nbits_per_codebook=B, num_codebooks=M,
                                           in_group_size=g, out_group_size=1,
                                           linear_weights_not_to_quantize=not_quantized))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_safetensors(folder / "model.safetensors", t)


def write_all(root: Path) -> list[str]:
    base = dict(hidden_act="silu", max_position_embeddings=64, bos_token_id=1, eos_token_id=2)
    make(root / "tiny_qwen2",
         dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=64, intermediate_size=96,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=97,
              rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False, sliding_window=4),
         dtype="BF16", bias=True, tied=False, seed=1)
    make(root / "tiny_llama3",
         dict(base, architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64, intermediate_size=80,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, vocab_size=101,
              rms_norm_eps=1e-5, rope_theta=10000.0,
              rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                original_max_position_embeddings=32)),
         dtype="F16", bias=False, tied=True, seed=2)
    make(root / "tiny_mistral",
         dict(base, architectures=["MistralForCausalLM"], model_type="mistral", hidden_size=64,
              intermediate_size=72, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
              vocab_size=89, rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=5),
         dtype="F32", bias=False, tied=False, seed=3)
    make_aqlm(root / "tiny_aqlm_2x8",
              dict(base, architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=64, intermediate_size=96,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=83,
                   rms_norm_eps=1e-5, rope_theta=10000.0),
              M=2, B=8, g=8, bias=False, keep_dense=["model.layers.1.mlp.down_proj"], seed=4)
    make_aqlm(root / "tiny_aqlm_1x10",
              dict(base, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=64, intermediate_size=80,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=79,
                   rms_norm_eps=1e-6, rope_theta=1000000.0, use_sliding_window=False),
              M=1, B=10, g=4, bias=True, keep_dense=[], seed=5)
    return ["tiny_qwen2", "tiny_llama3", "tiny_mistral", "tiny_aqlm_2x8", "tiny_aqlm_1x10"]


def write_smollm2_shaped(root: Path) -> None:
    """Random models with SmolLM2-135M's shapes, for bench_runtime only (not fixtures): the
    decode speed of dense F16 and of AQLM 2x8g8 weights does not depend on their values."""
    shape = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", hidden_size=576,
                 intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                 vocab_size=49152, rms_norm_eps=1e-5, rope_theta=100000.0, max_position_embeddings=8192,
                 bos_token_id=1, eos_token_id=2)
    make(root / "smollm2_shaped_f16", dict(shape), dtype="F16", bias=False, tied=True, seed=11)
    make_aqlm(root / "smollm2_shaped_aqlm_2x8", dict(shape), M=2, B=8, g=8, bias=False, keep_dense=[], seed=12)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--smollm2-shaped":
        write_smollm2_shaped(Path(sys.argv[2]))
    else:
        for n in write_all(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "runtime"):
            print("wrote", n)
