#!/usr/bin/env python3
"""Writes the safetensors / Hugging Face folder fixtures of tests/model with the reference
`safetensors` package, and the values the C++ readers must produce.

usage: make_hf_fixtures.py OUT_DIR      (the tests use tests/fixtures/model)

Files:
  st_mixed.safetensors + st_mixed.json   tensors of every numpy-expressible dtype and a
                                         __metadata__ map, written by safetensors.numpy
  st_conversions.json   float32 inputs (edge cases included) and their float16 / bfloat16
                        bit patterns, rounded to nearest even: float16 by numpy, bfloat16 by
                        exact rational arithmetic (fractions), independent of the C++ code
  hf_tiny_sharded/      a 1-layer llama folder in two shards + index, F16 weights and F32 norms,
                        generation_config.json with two eos ids, a chat template in list form
  hf_tiny_expected.{json,f32}  its tensors as float32
  aqlm_tiny/            a 1-layer AQLM folder (1 codebook of 8 bits, groups of 8) in the format
                        of REFERENCE.md section 5, with k_proj kept dense
"""
import json
import os
import struct
import sys
from fractions import Fraction

import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(7)


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def bf16_round(x):
    """float32 -> bfloat16 bits, round to nearest even, by exact comparison of the two candidates."""
    b = f32_bits(x)
    if (b & 0x7FFFFFFF) > 0x7F800000:
        return None  # NaN: the test only checks it stays NaN
    low = b & 0xFFFF0000
    if b & 0xFFFF == 0:
        return low >> 16
    high = low + 0x10000
    xv, lv = Fraction(x), Fraction(bits_f32(low))
    if (high & 0x7F800000) == 0x7F800000:  # the next value up is infinity: IEEE rounds as if it were 2^128
        hv = Fraction(2) ** 128 * (1 if x > 0 else -1)
    else:
        hv = Fraction(bits_f32(high))
    dl, dh = abs(xv - lv), abs(hv - xv)
    if dl < dh:
        return low >> 16
    if dh < dl:
        return high >> 16
    return (low >> 16) if ((low >> 16) & 1) == 0 else (high >> 16)


def write_expected(stem, tensors):
    index, blobs, offset = {}, [], 0
    for name, values in tensors.items():
        flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
        index[name] = {"shape": list(values.shape), "offset": offset, "count": int(flat.size)}
        blobs.append(flat.tobytes())
        offset += flat.size
    with open(stem + ".json", "w") as fh:
        json.dump(index, fh, indent=0)
    with open(stem + ".f32", "wb") as fh:
        fh.write(b"".join(blobs))


def write_mixed(out):
    tensors = {
        "a.f32": rng.normal(size=(3, 5)).astype(np.float32),
        "b.f16": rng.normal(size=(4,)).astype(np.float16),
        "c.f64": rng.normal(size=(2, 2)).astype(np.float64),
        "d.i8": rng.integers(-128, 128, size=(7,)).astype(np.int8),
        "e.i16": rng.integers(-30000, 30000, size=(2, 3)).astype(np.int16),
        "f.i32": rng.integers(-2 ** 31, 2 ** 31, size=(3,)).astype(np.int32),
        "g.i64": rng.integers(-2 ** 62, 2 ** 62, size=(2,)).astype(np.int64),
        "h.u8": rng.integers(0, 256, size=(1, 1, 5)).astype(np.uint8),
        "i.empty": np.zeros((0, 4), dtype=np.float32),
        "j.scalar": np.array(3.5, dtype=np.float32),
    }
    save_file(tensors, os.path.join(out, "st_mixed.safetensors"), metadata={"format": "pt", "note": "fixture"})
    expected = {name: {"dtype": {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8", "int16": "I16",
                                 "int32": "I32", "int64": "I64", "uint8": "U8"}[str(t.dtype)],
                       "shape": list(t.shape), "values": [v.item() for v in t.reshape(-1)]}
                for name, t in tensors.items()}
    with open(os.path.join(out, "st_mixed.json"), "w") as fh:
        json.dump(expected, fh, indent=0)


def write_conversions(out):
    specials = [0.0, -0.0, 1.0, -2.5, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8,
                1e-10, 3.0e38, 3.3895e38, 3.4e38, 1.00048828125, 1.00146484375, 1.0000001, float("inf"),
                float("-inf"), float("nan")]
    randoms = list(rng.normal(0, 1, 200).astype(np.float32)) + list(
        (rng.normal(0, 1, 100) * 10.0 ** rng.integers(-9, 6, 100)).astype(np.float32))
    values = [float(np.float32(v)) for v in specials + randoms]
    result = []
    for v in values:
        f16 = int(np.array([v], dtype=np.float32).astype(np.float16).view(np.uint16)[0])
        bf16 = bf16_round(v)
        result.append({"f32_bits": f32_bits(v), "f16_bits": f16, "bf16_bits": bf16})
    with open(os.path.join(out, "st_conversions.json"), "w") as fh:
        json.dump(result, fh, indent=0)


def tiny_llama_tensors(hidden=32, heads=4, kv_heads=2, ffn=64, vocab=48, dtype=np.float16):
    head_dim = hidden // heads
    t = {"model.embed_tokens.weight": rng.normal(size=(vocab, hidden)).astype(dtype),
         "model.norm.weight": (1 + 0.1 * rng.normal(size=hidden)).astype(np.float32),
         "lm_head.weight": rng.normal(size=(vocab, hidden)).astype(dtype)}
    p = "model.layers.0."
    t[p + "input_layernorm.weight"] = (1 + 0.1 * rng.normal(size=hidden)).astype(np.float32)
    t[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.normal(size=hidden)).astype(np.float32)
    shapes = {"self_attn.q_proj": (hidden, hidden), "self_attn.k_proj": (kv_heads * head_dim, hidden),
              "self_attn.v_proj": (kv_heads * head_dim, hidden), "self_attn.o_proj": (hidden, hidden),
              "mlp.gate_proj": (ffn, hidden), "mlp.up_proj": (ffn, hidden), "mlp.down_proj": (hidden, ffn)}
    for name, shape in shapes.items():
        t[p + name + ".weight"] = (0.2 * rng.normal(size=shape)).astype(dtype)
    return t, shapes


def tiny_config(torch_dtype):
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
            "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 48, "max_position_embeddings": 128, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": torch_dtype}


def write_sharded(out):
    folder = os.path.join(out, "hf_tiny_sharded")
    os.makedirs(folder, exist_ok=True)
    tensors, _ = tiny_llama_tensors()
    names = sorted(tensors)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in shard}, os.path.join(folder, file), metadata={"format": "pt"})
        weight_map.update({n: file for n in shard})
    total = sum(t.nbytes for t in tensors.values())
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(tiny_config("float16"), fh, indent=2)
    with open(os.path.join(folder, "generation_config.json"), "w") as fh:
        json.dump({"bos_token_id": 1, "eos_token_id": [2, 5]}, fh, indent=2)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as fh:
        json.dump({"chat_template": [{"name": "tool_use", "template": "TOOLS"},
                                     {"name": "default", "template": "{{ messages[0].content }}"}]}, fh, indent=2)
    write_expected(os.path.join(out, "hf_tiny_expected"), {n: t.astype(np.float32) for n, t in tensors.items()})


def write_aqlm(out):
    folder = os.path.join(out, "aqlm_tiny")
    os.makedirs(folder, exist_ok=True)
    dense, shapes = tiny_llama_tensors()
    M, B, g = 1, 8, 8
    tensors = {n: t for n, t in dense.items() if "layers.0.self_attn" not in n and "layers.0.mlp" not in n}
    kept = ["model.layers.0.self_attn.k_proj.weight"]
    tensors[kept[0]] = dense[kept[0]]
    for name, (rows, cols) in shapes.items():
        p = "model.layers.0." + name
        if p + ".weight" in kept:
            continue
        codes = rng.integers(0, 2 ** B, size=(rows, cols // g, M))
        tensors[p + ".codes"] = codes.astype(np.uint8).view(np.int8)  # unsigned index as two's complement
        tensors[p + ".codebooks"] = rng.normal(size=(M, 2 ** B, 1, g)).astype(np.float16)
        tensors[p + ".scales"] = rng.uniform(0.5, 2, size=(rows, 1, 1, 1)).astype(np.float16)
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = tiny_config("float16")
    config["quantization_config"] = {
        "quant_method": "aqlm", "nbits_per_codebook": B, "num_codebooks": M, "in_group_size": g,
        "out_group_size": 1,
        "linear_weights_not_to_quantize": ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                                           "model.layers.0.post_attention_layernorm.weight", kept[0],
                                           "model.norm.weight", "lm_head.weight"]}
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)


def main(out):
    os.makedirs(out, exist_ok=True)
    write_mixed(out)
    write_conversions(out)
    write_sharded(out)
    write_aqlm(out)


if __name__ == "__main__":
    main(sys.argv[1])
