#!/usr/bin/env python3
"""Reads SmolLM2-135M-Instruct.Q4_1.gguf with the reference `gguf` package and writes, for a few
tensors under their Hugging Face names (q/k converted to the half-split RoPE layout with
transformers' permutation), the float64 sum, a layout-sensitive checksum
sum(w.flat[i] * (i % 97 + 1)) and one explicit row. Used by tests/model/gguf_test.cpp.

usage: smollm2_gguf_reference.py MODEL.gguf OUT.json
"""
import json
import sys

import numpy as np
import gguf
from gguf.quants import dequantize


def hf_permute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main(path, out):
    r = gguf.GGUFReader(path)
    tensors = {t.name: t for t in r.tensors}
    wanted = {
        "token_embd.weight": ("model.embed_tokens.weight", 0),
        "blk.0.attn_q.weight": ("model.layers.0.self_attn.q_proj.weight", 9),
        "blk.0.attn_k.weight": ("model.layers.0.self_attn.k_proj.weight", 3),
        "blk.17.attn_v.weight": ("model.layers.17.self_attn.v_proj.weight", 0),
        "blk.29.ffn_down.weight": ("model.layers.29.mlp.down_proj.weight", 0),
        "blk.29.ffn_norm.weight": ("model.layers.29.post_attention_layernorm.weight", 0),
        "output_norm.weight": ("model.norm.weight", 0),
    }
    result = {"tensor_count": len(r.tensors), "tensors": {}}
    for gguf_name, (hf_name, heads) in wanted.items():
        t = tensors[gguf_name]
        shape = [int(d) for d in reversed(t.shape)]
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if heads:
            w = hf_permute(w, heads)
        flat = w.astype(np.float64).reshape(-1)
        row = 70 if w.ndim == 2 else None
        result["tensors"][hf_name] = {
            "gguf_type": t.tensor_type.name,
            "shape": shape,
            "sum": float(flat.sum()),
            "checksum": float(np.dot(flat, (np.arange(flat.size) % 97 + 1).astype(np.float64))),
            "row": 70 if row is not None else -1,
            "row_values": [float(v) for v in (w[row] if row is not None else w)],
        }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
