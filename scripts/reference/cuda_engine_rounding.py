#!/usr/bin/env python3
"""How far the CUDA engine's fp16 / bf16 storage can move the logits: the tolerance evidence
for tests/runtime/cuda_engine_test.cpp.

The float64 forward of forward_reference.py, with every value rounded where the CUDA engine
stores it in the activation type (fp16, or bf16 for bfloat16 models): weights, embedding
rows, RMSNorm outputs, q/k/v (the KV cache), attention outputs, projection outputs, SwiGLU.
The residual stream, the sums and the logits stay unrounded (fp32 on the GPU). Printed per
model: max |logits - float64| / max |float64| (the tests' measure) and, for the greedy
stories260K run, the smallest top-1 / top-2 gap next to the largest logit error (greedy
tokens can only change where the error reaches the gap).

Usage: python3 scripts/reference/cuda_engine_rounding.py
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forward_reference as ref  # noqa: E402


def round_to(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "fp16":
        return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)
    f = np.asarray(x, dtype=np.float64).astype(np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000  # round to nearest even
    return bits.astype(np.uint32).view(np.float32).astype(np.float64)


def rounded_logits(W: ref.Weights, cfg: ref.Config, ids: list[int], kind: str) -> np.ndarray:
    r = lambda a: round_to(a, kind)  # noqa: E731
    T = len(ids)
    pos = np.arange(T)
    group = cfg.heads // cfg.kv_heads
    x = r(W.embed)[np.asarray(ids)]
    i, j = np.meshgrid(pos, pos, indexing="ij")
    visible = j <= i
    if cfg.sliding_window:
        visible &= j > i - cfg.sliding_window
    for L in W.layers:
        h = r(ref.rmsnorm(x, L["attn_norm"], cfg.eps))
        q = r(h @ r(L["q"]).T)
        k = r(h @ r(L["k"]).T)
        v = r(h @ r(L["v"]).T)
        if "bq" in L:  # the bias is added to the stored projection output, then stored again
            q, k, v = r(q + L["bq"]), r(k + L["bk"]), r(v + L["bv"])
        q = r(ref.apply_rope(q.reshape(T, cfg.heads, cfg.head_dim), pos, cfg))
        k = r(ref.apply_rope(k.reshape(T, cfg.kv_heads, cfg.head_dim), pos, cfg))
        v = v.reshape(T, cfg.kv_heads, cfg.head_dim)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        att = np.empty((T, cfg.heads, cfg.head_dim))
        for hh in range(cfg.heads):
            s = q[:, hh, :] @ k[:, hh, :].T / math.sqrt(cfg.head_dim)
            s = np.where(visible, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hh, :] = s @ v[:, hh, :]
        x = x + r(r(att.reshape(T, -1)) @ r(L["o"]).T)
        h = r(ref.rmsnorm(x, L["mlp_norm"], cfg.eps))
        g, u = r(h @ r(L["gate"]).T), r(h @ r(L["up"]).T)
        x = x + r(r(g / (1 + np.exp(-g)) * u) @ r(L["down"]).T)
    return r(ref.rmsnorm(x, W.final_norm, cfg.eps)) @ r(W.head).T


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main() -> None:
    for name in ("tiny_qwen2", "tiny_llama3", "tiny_mistral", "tiny_aqlm_2x8", "tiny_aqlm_1x10"):
        folder = ref.FIXTURES / name
        W, cfg = ref.read_hf_folder(folder)
        kind = "bf16" if json.loads((folder / "config.json").read_text())["torch_dtype"] == "bfloat16" else "fp16"
        ids = json.loads((folder / "reference.json").read_text())["ids"]
        exact = ref.logits(W, cfg, ids)
        print(f"{name:16s} {kind}: max relative logit error {relative(rounded_logits(W, cfg, ids, kind), exact):.2e}")
    W, cfg = ref.read_llama2c(ref.SHARED / "models" / "stories260K" / "stories260K.bin")
    ids = [1]
    for _ in range(80):
        ids.append(int(np.argmax(ref.logits(W, cfg, ids)[-1])))
    exact = ref.logits(W, cfg, ids[:-1])
    got = rounded_logits(W, cfg, ids[:-1], "fp16")
    top2 = np.sort(exact, axis=1)[:, -2:]
    gap = float(np.min(top2[:, 1] - top2[:, 0]))
    same = bool(np.all(np.argmax(got, axis=1) == np.argmax(exact, axis=1)))
    print(f"stories260K      fp16: max relative logit error {relative(got, exact):.2e}, "
          f"largest abs error {float(np.max(np.abs(got - exact))):.3e}, smallest greedy top-2 gap {gap:.3e}, "
          f"same greedy tokens: {same}")


if __name__ == "__main__":
    main()
