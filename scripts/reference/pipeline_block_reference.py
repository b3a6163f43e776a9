#!/usr/bin/env python3
"""Reference for tests/quant/pipeline_block_test.cpp: block 0 of stories260K in float64.

Reads ../shared/models/stories260K/stories260K.bin directly (the llama2.c layout of
../shared/README.md, with llama2.c's own interleaved-pair RoPE, independent of the C++
loader's conversion to Hugging Face names and the half-split layout), takes a few windows of
seeded random token ids, rounds their embeddings to fp16 (as the pipeline stores activations)
and runs decoder block 0 on them in float64, recording:

  ids        [W, T] int32   the windows (BOS first)
  xtx_qkv    [64, 64]       mean over tokens of n1 n1^T   (input of q/k/v_proj)
  xtx_o      [64, 64]       ... of the attention output    (input of o_proj)
  xtx_gate_up[64, 64]       ... of n2                      (input of gate/up_proj)
  xtx_down   [172, 172]     ... of silu(gate) * up         (input of down_proj)
  outputs    [W, T, 64]     the block's outputs

Values are stored as float32 (the C++ side computes in float32; the tests' tolerances are far
above float32 rounding). Usage:
  python3 scripts/reference/pipeline_block_reference.py [SHARED_DIR]
"""
import os
import sys

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
OUT = os.path.join(ROOT, "tests", "fixtures", "quant", "pipeline", "stories260K_block0.safetensors")

WINDOWS, TOKENS, SEED = 3, 32, 20260


def load_stories(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = np.frombuffer(raw[:28], dtype=np.int32)
    vocab = abs(int(vocab))
    head = dim // n_heads
    kv_dim = n_kv_heads * head
    f = np.frombuffer(raw[28:], dtype=np.float32).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = f[pos:pos + n].reshape(shape)
        pos += n
        return a

    m = dict(dim=int(dim), hidden=int(hidden), n_heads=int(n_heads), n_kv_heads=int(n_kv_heads), head=int(head))
    m["emb"] = take(vocab, dim)
    m["rms_att"] = take(n_layers, dim)
    m["wq"] = take(n_layers, dim, dim)
    m["wk"] = take(n_layers, kv_dim, dim)
    m["wv"] = take(n_layers, kv_dim, dim)
    m["wo"] = take(n_layers, dim, dim)
    m["rms_ffn"] = take(n_layers, dim)
    m["w1"] = take(n_layers, hidden, dim)
    m["w2"] = take(n_layers, dim, hidden)
    m["w3"] = take(n_layers, hidden, dim)
    return m


def rmsnorm(x, w, eps=1e-5):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_interleaved(x, n_heads, head):
    # llama2.c: in each head, pairs (2i, 2i+1) turn by pos * 10000^(-2i/head).
    T = x.shape[0]
    y = x.copy().reshape(T, n_heads, head)
    i = np.arange(0, head, 2)
    freq = 1.0 / np.power(10000.0, i / head)
    angle = np.arange(T)[:, None] * freq[None, :]
    c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    a, b = y[:, :, 0::2].copy(), y[:, :, 1::2].copy()
    y[:, :, 0::2] = a * c - b * s
    y[:, :, 1::2] = a * s + b * c
    return y.reshape(T, n_heads * head)


def block0(m, x):
    H, KV, hd = m["n_heads"], m["n_kv_heads"], m["head"]
    n1 = rmsnorm(x, m["rms_att"][0])
    q = rope_interleaved(n1 @ m["wq"][0].T, H, hd)
    k = rope_interleaved(n1 @ m["wk"][0].T, KV, hd)
    v = n1 @ m["wv"][0].T
    T = x.shape[0]
    attn = np.zeros((T, H * hd))
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    for h in range(H):
        g = h // (H // KV)
        qh, kh, vh = q[:, h * hd:(h + 1) * hd], k[:, g * hd:(g + 1) * hd], v[:, g * hd:(g + 1) * hd]
        scores = qh @ kh.T / np.sqrt(hd)
        scores[mask] = -np.inf
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        attn[:, h * hd:(h + 1) * hd] = p @ vh
    h_res = x + attn @ m["wo"][0].T
    n2 = rmsnorm(h_res, m["rms_ffn"][0])
    gate, up = n2 @ m["w1"][0].T, n2 @ m["w3"][0].T
    act = gate / (1.0 + np.exp(-gate)) * up
    y = h_res + act @ m["w2"][0].T
    return n1, attn, n2, act, y


def main():
    m = load_stories(os.path.join(SHARED, "models", "stories260K", "stories260K.bin"))
    rng = np.random.default_rng(SEED)
    ids = rng.integers(3, 512, size=(WINDOWS, TOKENS)).astype(np.int32)
    ids[:, 0] = 1  # BOS, as windows cut at a document start begin
    sums = {"qkv": 0, "o": 0, "gate_up": 0, "down": 0}
    outputs = []
    for w in range(WINDOWS):
        x = m["emb"][ids[w]].astype(np.float16).astype(np.float64)  # activations are stored as fp16
        n1, attn, n2, act, y = block0(m, x)
        for key, a in (("qkv", n1), ("o", attn), ("gate_up", n2), ("down", act)):
            sums[key] = sums[key] + a.T @ a
        outputs.append(y)
    n = WINDOWS * TOKENS
    tensors = {"ids": ids, "outputs": np.stack(outputs).astype(np.float32)}
    for key, s in sums.items():
        tensors["xtx_" + key] = (s / n).astype(np.float32)
    save_file(tensors, OUT)
    print("wrote", OUT, {k: v.shape for k, v in tensors.items()})


if __name__ == "__main__":
    main()
