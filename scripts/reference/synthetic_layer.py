#!/usr/bin/env python3
"""Synthetic structured layer problems (W and XTX) as .safetensors, for the reference AQLM
implementation and for fixtures: the same kind of problem as core/quant/synthetic_layer.cpp
(heavy-tailed rows with Student-t row scales; correlated inputs from shared low-rank factors
plus noise, with a few outlier channels scaled 10-50x; XTX = X^T X / tokens in float64).
The random streams differ from the C++ generator: same distribution, not the same numbers.

    python3 scripts/reference/synthetic_layer.py --out 4096 --in 4096 --seed 0 layer.safetensors
"""
import argparse

import numpy as np
from safetensors.numpy import save_file


def make_layer(out_features, in_features, tokens=0, seed=0, dof=3, factor_rank=0, factor_weight=1.0,
               outlier_channels=0, outlier_min=10.0, outlier_max=50.0):
    rng = np.random.default_rng(seed)
    tokens = tokens or 4 * in_features
    rank = min(factor_rank or max(1, in_features // 8), in_features)
    outliers = min(in_features, outlier_channels or max(1, in_features // 32))
    t = rng.standard_normal(out_features) / np.sqrt(rng.chisquare(dof, out_features) / dof)
    row_scale = 0.25 + np.abs(t)
    w = row_scale[:, None] * rng.standard_normal((out_features, in_features)) / np.sqrt(in_features)
    factors = rng.standard_normal((in_features, rank)) / np.sqrt(rank)
    x = rng.standard_normal((tokens, in_features)) + factor_weight * rng.standard_normal((tokens, rank)) @ factors.T
    channels = rng.permutation(in_features)[:outliers]
    x[:, channels] *= rng.uniform(outlier_min, outlier_max, outliers)
    xtx = x.T @ x / tokens
    xtx = (xtx + xtx.T) / 2
    return w.astype(np.float32), xtx.astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--out", type=int, default=64)
    ap.add_argument("--in", dest="in_features", type=int, default=128)
    ap.add_argument("--tokens", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outliers", type=int, default=0)
    a = ap.parse_args()
    w, xtx = make_layer(a.out, a.in_features, a.tokens, a.seed, outlier_channels=a.outliers)
    save_file({"W": w, "XTX": xtx}, a.path, metadata={"layer": f"synthetic {a.out}x{a.in_features} seed {a.seed}"})
    print(f"wrote {a.path}: W {w.shape} float32, XTX {xtx.shape} float64")


if __name__ == "__main__":
    main()
