#!/usr/bin/env python3
"""Writes tiny Hugging Face model folders with random weights for the runtime tests.

Each exercises what the small real models do not:
  tiny_qwen2    Qwen2: q/k/v biases, untied LM head, GQA 4/2, BF16 weights
  tiny_llama3   Llama-3: llama3 rope scaling (all three frequency bands), tied head, MQA 4/1, F16 weights
  tiny_mistral  Mistral: GQA 8/2, sliding window 5 (shorter than the test sequence), F32 weights
Weights are drawn in float64, rounded to the stored type; the reference forward reads the
stored (rounded) values back. safetensors is written here directly (header + raw bytes)
because numpy has no bfloat16 for the python safetensors package.
Run through `forward_reference.py tiny`, which also writes each folder's reference.json.
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
    """tensors: name -> (dtype "F32" | "F16" | "BF16", float64 array)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, a = tensors[name]
        if dtype == "F32":
            raw = a.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = a.astype("<f2").tobytes()
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
    return ["tiny_qwen2", "tiny_llama3", "tiny_mistral"]


if __name__ == "__main__":
    for n in write_all(Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "runtime"):
        print("wrote", n)
