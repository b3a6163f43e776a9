#!/usr/bin/env python3
"""Independent numpy references for the scalar baselines of core/quant, written as the fixture
tests/fixtures/quant/gptq_rtn.safetensors:

- RTN in float32: per group of `gs` inputs of a row, the range [min(x_min, 0), max(x_max, 0)]
  ([-1, 1] for an all-zero group), scale = range / (2^b - 1), zero = round(-lo / scale),
  q = clip(round(x / scale) + zero, 0, 2^b - 1), x' = scale * (q - zero); numpy's round is
  half-to-even, as C++ nearbyint. Must match the C++ result bit for bit.
- GPTQ in float64, written the plain way (no lazy batches, no row tiles): columns in natural
  or act-order (stable descending diag), dead columns (diag 0) zeroed, H + damp*mean(diag)*I,
  U = upper Cholesky factor of H^-1, and for each column: fit the group's grid on the current
  (error-updated) weights when the group starts, quantize, spread (w - q) / U[i,i] * U[i, i+1:]
  over every later column at once.

    python3 scripts/reference/aqlm_reference_gptq_rtn.py tests/fixtures/quant/gptq_rtn.safetensors
"""
import sys

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from synthetic_layer import make_layer  # noqa: E402


def grid(x, bits):
    """x: [rows, n] -> (scale, zero, maxq), per row, in x's dtype."""
    maxq = x.dtype.type(2 ** bits - 1)
    lo = np.minimum(x.min(axis=1), 0)
    hi = np.maximum(x.max(axis=1), 0)
    both_zero = (lo == 0) & (hi == 0)
    lo[both_zero] = -1
    hi[both_zero] = 1
    scale = (hi - lo) / maxq
    zero = np.round(-lo / scale)
    return scale, zero, maxq


def quantize(x, scale, zero, maxq):
    q = np.clip(np.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def rtn(w, bits, gs):
    w = w.astype(np.float32)
    out = np.empty_like(w)
    gs = gs or w.shape[1]
    for c0 in range(0, w.shape[1], gs):
        block = w[:, c0:c0 + gs]
        s, z, m = grid(block, bits)
        out[:, c0:c0 + gs] = quantize(block, s[:, None], z[:, None], m)
    return out


def gptq(w, xtx, bits, gs, act_order, damp=0.01):
    w = w.astype(np.float64).copy()
    h = xtx.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    cols = w.shape[1]
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(cols)
    w = w[:, perm]
    h = h[perm][:, perm]
    h[np.diag_indices(cols)] += damp * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: inv(h) = u^T u
    q = np.zeros_like(w)
    if not gs:
        s, z, m = grid(w, bits)
    for i in range(cols):
        if gs and i % gs == 0:
            s, z, m = grid(w[:, i:i + gs], bits)
        q[:, i] = quantize(w[:, i], s, z, m)
        err = (w[:, i] - q[:, i]) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    result = np.empty_like(q)
    result[:, perm] = q
    return result


def main():
    path = sys.argv[1]
    w, xtx = make_layer(24, 64, tokens=256, seed=7, outlier_channels=3)
    # One input channel never active (a dead column: GPTQ must zero it), and one all-zero row group.
    xtx[5, :] = 0
    xtx[:, 5] = 0
    w[3, 16:32] = 0
    tensors = {"W": w, "XTX": xtx}
    for bits in (2, 3, 4):
        for gs in (0, 16):
            tensors[f"rtn_b{bits}_g{gs}"] = rtn(w, bits, gs)
    for bits in (2, 3, 4):
        for gs in (0, 16, 24):
            for act in (0, 1):
                tensors[f"gptq_b{bits}_g{gs}_act{act}"] = gptq(w, xtx, bits, gs, bool(act))
    # safetensors writes the memory buffer as it is: make every array C-ordered first.
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(tensors, path, metadata={"layer": "gptq/rtn fixture 24x64 seed 7"})
    print(f"wrote {path}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
