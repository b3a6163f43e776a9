#!/usr/bin/env python3
"""Expected outputs of AQLM matrix-vector products and dequantization, in numpy float64.

Writes tests/fixtures/kernels/aqlm_gemv_cases.txt, read by kernels/cpu/aqlm_gemv_test.cpp.
Inputs are not stored: both sides draw them from the same integer recipe (xorshift64*,
below and in kernels/cpu/aqlm_test_data.h), chosen so every value is exact in its storage
type (codebooks and scales in fp16, x in fp32). Codes are stored the way the Hugging Face
AQLM format stores them (pack_int_data: codes >= 2^(B-1) become negative two's complement
integers), so readers must mask the low B bits.

Order of draws per case: codes [out, in/g, M], codebooks [M, 2^B, g], scales [out], x [n, in].
"""
import os
import sys

import numpy as np

MASK64 = (1 << 64) - 1


class XorShift64Star:
    def __init__(self, seed):
        self.s = (seed * 0x9E3779B97F4A7C15 + 1) & MASK64

    def next(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & MASK64
        s ^= s >> 27
        self.s = s
        return (s * 2685821657736338717) & MASK64


def draw_layer(out, inp, M, B, g, n, seed):
    rng = XorShift64Star(seed)
    groups = inp // g
    K = 1 << B
    codes = np.array([rng.next() >> 40 for _ in range(out * groups * M)], dtype=np.int64) % K
    codes = codes.reshape(out, groups, M)
    # codebook entries (k - 1024) / 2048, k in [0, 2048): exact in fp16
    cb = np.array([(int(rng.next() >> 53) - 1024) / 2048.0 for _ in range(M * K * g)]).reshape(M, K, g)
    # scales (k + 512) / 16384, k in [0, 1024): exact in fp16, in [1/32, 3/32)
    scales = np.array([(int(rng.next() >> 54) + 512) / 16384.0 for _ in range(out)])
    # activations (k - 2^23) / 2^22, k in [0, 2^24): exact in fp32, in [-2, 2)
    x = np.array([(int(rng.next() >> 40) - (1 << 23)) / float(1 << 22) for _ in range(n * inp)]).reshape(n, inp)
    return codes, cb, scales, x


def dequantize(codes, cb, scales):
    out, groups, M = codes.shape
    g = cb.shape[2]
    w = np.zeros((out, groups, g))
    for m in range(M):
        w += cb[m][codes[:, :, m]]
    return (w * scales[:, None, None]).reshape(out, groups * g)


# name, out, in, M, B, g, code_bytes, n, seed, store_weights
CASES = [
    ("2x8g8", 13, 48, 2, 8, 8, 1, 3, 1, True),
    ("1x8g8", 5, 16, 1, 8, 8, 1, 1, 2, True),
    ("1x16g8", 9, 40, 1, 16, 8, 2, 2, 3, False),
    ("3x6g4", 7, 12, 3, 6, 4, 1, 2, 4, True),
    ("2x10g8", 6, 24, 2, 10, 8, 2, 1, 5, True),
    ("2x8g16", 4, 64, 2, 8, 16, 1, 2, 6, True),
    ("1x8g4_in172", 3, 172, 1, 8, 4, 1, 1, 7, False),
    ("2x8g8_n10", 5, 16, 2, 8, 8, 1, 10, 8, False),
    ("4x8g8", 6, 32, 4, 8, 8, 1, 5, 9, True),
    ("2x6g8", 6, 32, 2, 6, 8, 1, 2, 10, False),
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "tests", "fixtures", "kernels", "aqlm_gemv_cases.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lines = [
        "# Written by scripts/reference/aqlm_gemv_fixture.py (numpy float64); do not edit.",
        "# case NAME out in M B g code_bytes n seed, then y (n*out, row-major [n, out]),",
        "# optionally w (out*in dequantized weights) and w16 (their float16 bits, hex).",
    ]
    for name, out, inp, M, B, g, code_bytes, n, seed, store_w in CASES:
        codes, cb, scales, x = draw_layer(out, inp, M, B, g, n, seed)
        w = dequantize(codes, cb, scales)
        y = x @ w.T  # [n, out], float64
        lines.append(f"case {name} {out} {inp} {M} {B} {g} {code_bytes} {n} {seed}")
        lines.append("y " + " ".join(f"{v:.17g}" for v in y.reshape(-1)))
        if store_w:
            lines.append("w " + " ".join(f"{v:.17g}" for v in w.reshape(-1)))
            bits = w.astype(np.float16).view(np.uint16).reshape(-1)
            lines.append("w16 " + " ".join(f"{int(b):04x}" for b in bits))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
