#!/usr/bin/env python3
"""Writes a llama2.c-format model with Llama-2-7B's block shape (hidden 4096, 32 heads of 128,
MLP 11008) and one decoder block of random weights, for timing one block of the quantization
pipeline (scripts/gpu/run_gpu_quant.sh). The vocabulary is stories260K's 512-token tokenizer
(tok512.bin), so calibration text tokenizes without a 32k-token vocabulary; only the block's
shape matters for the timing. Weights ~ N(0, 1/in) (a standard initialisation), norms 1,
embeddings N(0, 0.02^2).

    python3 scripts/gpu/make_llama7b_block.py /tmp/llama7b-block.bin [--layers 1] [--seq-len 4096]
"""
import argparse
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=11008)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    head_dim = a.dim // a.heads
    kv_dim = a.kv_heads * head_dim

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    with open(a.path, "wb") as f:
        # vocab > 0: the classifier is tied to the embedding
        f.write(struct.pack("7i", a.dim, a.hidden, a.layers, a.heads, a.kv_heads, a.vocab, a.seq_len))
        normal((a.vocab, a.dim), 0.02).tofile(f)
        np.ones((a.layers, a.dim), np.float32).tofile(f)  # attention RMSNorm
        for out_features in (a.dim, kv_dim, kv_dim, a.dim):  # wq, wk, wv, wo (each [L, out, in])
            for _ in range(a.layers):
                normal((out_features, a.dim), a.dim ** -0.5).tofile(f)
        np.ones((a.layers, a.dim), np.float32).tofile(f)  # FFN RMSNorm
        for _ in range(a.layers):
            normal((a.hidden, a.dim), a.dim ** -0.5).tofile(f)  # w1 (gate)
        for _ in range(a.layers):
            normal((a.dim, a.hidden), a.hidden ** -0.5).tofile(f)  # w2 (down)
        for _ in range(a.layers):
            normal((a.hidden, a.dim), a.dim ** -0.5).tofile(f)  # w3 (up)
        np.ones(a.dim, np.float32).tofile(f)  # final RMSNorm
        np.zeros((2, a.seq_len, head_dim // 2), np.float32).tofile(f)  # legacy RoPE table (unused)
    print(f"wrote {a.path}: {a.layers} block(s) of dim {a.dim}, hidden {a.hidden}, {a.heads} heads, vocab {a.vocab}")


if __name__ == "__main__":
    main()
