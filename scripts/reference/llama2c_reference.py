#!/usr/bin/env python3
"""Independent numpy reading of a llama2.c (version 0) checkpoint, for tests/model/llama2c_test.cpp.

Writes, for every tensor under its Hugging Face name, the shape, the float64 sum and a
layout-sensitive checksum sum(w.flat[i] * (i % 97 + 1)), plus a few explicit rows. The q/k
projections are converted with the permutation transformers' convert_llama_weights_to_hf.py
uses (view(heads, hd/2, 2, dim).transpose(1, 2)), independent of the C++ loop.

usage: llama2c_reference.py MODEL.bin OUT.json
"""
import json
import sys

import numpy as np


def hf_permute(w, n_heads):
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def main(path, out):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = np.frombuffer(raw[:28], dtype="<i4")
    shared = vocab > 0
    vocab = abs(vocab)
    head_dim = dim // n_heads
    kv_dim = head_dim * n_kv_heads
    f = np.frombuffer(raw[28:], dtype="<f4").astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = f[pos:pos + n].reshape(shape)
        pos += n
        return a

    tensors = {"model.embed_tokens.weight": take(vocab, dim)}
    stacked = [
        ("input_layernorm.weight", (dim,)),
        ("self_attn.q_proj.weight", (dim, dim)),
        ("self_attn.k_proj.weight", (kv_dim, dim)),
        ("self_attn.v_proj.weight", (kv_dim, dim)),
        ("self_attn.o_proj.weight", (dim, dim)),
        ("post_attention_layernorm.weight", (dim,)),
        ("mlp.gate_proj.weight", (hidden, dim)),
        ("mlp.down_proj.weight", (dim, hidden)),
        ("mlp.up_proj.weight", (hidden, dim)),
    ]
    for suffix, shape in stacked:
        block = take(n_layers, *shape)
        for layer in range(n_layers):
            w = block[layer]
            if suffix == "self_attn.q_proj.weight":
                w = hf_permute(w, n_heads)
            if suffix == "self_attn.k_proj.weight":
                w = hf_permute(w, n_kv_heads)
            tensors[f"model.layers.{layer}.{suffix}"] = w
    tensors["model.norm.weight"] = take(dim)
    take(seq_len, head_dim)  # RoPE table
    if not shared:
        tensors["lm_head.weight"] = take(vocab, dim)
    assert pos == f.size, "unexpected trailing data"

    def checksum(w):
        flat = w.reshape(-1)
        return float(np.dot(flat, (np.arange(flat.size) % 97 + 1).astype(np.float64)))

    q = tensors["model.layers.2.self_attn.q_proj.weight"]
    k = tensors["model.layers.4.self_attn.k_proj.weight"]
    result = {
        "config": {"dim": int(dim), "hidden": int(hidden), "layers": int(n_layers), "heads": int(n_heads),
                   "kv_heads": int(n_kv_heads), "vocab": int(vocab), "seq_len": int(seq_len), "tied": bool(shared)},
        "num_parameters": int(sum(w.size for w in tensors.values())),
        "tensors": {name: {"shape": list(w.shape), "sum": float(w.sum()), "checksum": checksum(w)}
                    for name, w in tensors.items()},
        # q row 25 is head 3, half-split index 1 (pair 1, first component): row 26 of the file.
        # q row 28 is head 3, half-split index 4 (pair 0, second component): row 25 of the file.
        "rows": {
            "model.layers.2.self_attn.q_proj.weight[25]": q[25].tolist(),
            "model.layers.2.self_attn.q_proj.weight[28]": q[28].tolist(),
            "model.layers.4.self_attn.k_proj.weight[31]": k[31].tolist(),
            "model.embed_tokens.weight[403]": tensors["model.embed_tokens.weight"][403].tolist(),
            "model.layers.0.mlp.down_proj.weight[63]": tensors["model.layers.0.mlp.down_proj.weight"][63].tolist(),
        },
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
