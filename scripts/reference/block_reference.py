#!/usr/bin/env python3
"""Independent numpy float64 decoder block, forward and backward, for tests/quant/block_*_test.cpp.

The forward pass transcribes Hugging Face's LlamaDecoderLayer / Qwen2 / Mistral math with whole
matrices (repeat_kv, a full [T, T] attention mask, a stored softmax), unlike the C++ code,
which streams query blocks and recomputes probabilities from log-sum-exps. The backward pass is
written by hand on those whole matrices and checked here against central finite differences
along random directions before anything is written.

For each variant the fixture holds the block's shape, weights, input x [B, T, H], a fixed
cotangent R (the loss is sum(y * R)), the output y and every gradient of the loss: w.r.t. x,
both norm weights, each linear weight, the q/k/v biases and, for the AQLM variant, the
codebooks and scales of each quantized linear. A last fixture records Adam steps as
torch.optim.Adam computes them.

usage: block_reference.py OUT_DIR     (writes block_<variant>.json and block_adam.json)
"""
import json
import math
import os
import sys

import numpy as np

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

VARIANTS = {
    # name: hidden, heads, kv_heads, head_dim, ffn, seqlen, batch, theta, scaling, bias, window, aqlm
    "llama": dict(hidden=16, heads=4, kv_heads=2, head_dim=4, ffn=24, seqlen=5, batch=2, theta=10000.0),
    "qwen2": dict(hidden=16, heads=4, kv_heads=2, head_dim=4, ffn=24, seqlen=5, batch=2, theta=1000000.0,
                  bias=True),
    # head_dim 8 with theta 500000 puts the four frequencies in all three llama3 bands
    # (two kept, one interpolated, one divided by the factor); q_dim 32 != hidden 16.
    "llama3": dict(hidden=16, heads=4, kv_heads=2, head_dim=8, ffn=24, seqlen=5, batch=2, theta=500000.0,
                   scaling=dict(type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                original_max_position_embeddings=8192)),
    "mistral": dict(hidden=16, heads=4, kv_heads=1, head_dim=4, ffn=24, seqlen=7, batch=2, theta=10000.0,
                    window=3),
    # every linear AQLM 2x4g4 (2 codebooks of 16 codewords of 4 weights)
    "aqlm": dict(hidden=16, heads=4, kv_heads=2, head_dim=4, ffn=24, seqlen=5, batch=2, theta=10000.0,
                 aqlm=dict(num_codebooks=2, nbits=4, group_size=4)),
}
EPS = 1e-5


def inv_freq(head_dim, theta, scaling):
    """transformers' _compute_default_rope_parameters / _compute_llama3_parameters, in float64."""
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if not scaling:
        return inv
    if scaling["type"] == "linear":
        return inv / scaling["factor"]
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    wavelen = 2 * math.pi / inv
    inv_llama = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_llama / factor + smooth * inv_llama
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return np.where(medium, smoothed, inv_llama)


def shapes(v):
    H, Q, KV, F = v["hidden"], v["heads"] * v["head_dim"], v["kv_heads"] * v["head_dim"], v["ffn"]
    return {"self_attn.q_proj": (Q, H), "self_attn.k_proj": (KV, H), "self_attn.v_proj": (KV, H),
            "self_attn.o_proj": (H, Q), "mlp.gate_proj": (F, H), "mlp.up_proj": (F, H), "mlp.down_proj": (H, F)}


def dequantize(codes, codebooks, scales):
    """codes [out, in/g, M], codebooks [M, K, g], scales [out] -> W [out, in]."""
    out, groups, M = codes.shape
    words = sum(codebooks[m][codes[:, :, m]] for m in range(M))  # [out, groups, g]
    return scales[:, None] * words.reshape(out, -1)


def dequantize_backward(codes, codebooks, scales, dW):
    out, groups, M = codes.shape
    g = codebooks.shape[2]
    dWg = dW.reshape(out, groups, g)
    d_books = np.zeros_like(codebooks)
    for m in range(M):
        np.add.at(d_books[m], codes[:, :, m], scales[:, None, None] * dWg)
    unscaled = sum(codebooks[m][codes[:, :, m]] for m in range(M)).reshape(out, -1)
    return d_books, (dW * unscaled).sum(axis=1)


def rope_tables(v):
    freqs = np.arange(v["seqlen"], dtype=np.float64)[:, None] * inv_freq(v["head_dim"], v["theta"],
                                                                           v.get("scaling"))[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)  # [T, d], as HF's cat((freqs, freqs))
    return np.cos(emb), np.sin(emb)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def mask(v):
    T = v["seqlen"]
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = j <= i
    if v.get("window"):
        allowed &= (i - j) < v["window"]
    return allowed


def forward(v, p, x):
    """Returns y and a cache of every intermediate."""
    B, T, H = x.shape
    nh, nkv, d = v["heads"], v["kv_heads"], v["head_dim"]
    W, b = p["W"], p["b"]
    c = {"x": x}
    var = (x ** 2).mean(-1, keepdims=True)
    c["r1"] = 1 / np.sqrt(var + EPS)
    c["xhat1"] = x * c["r1"]
    n1 = p["input_norm"] * c["xhat1"]
    c["n1"] = n1
    q = n1 @ W["self_attn.q_proj"].T + b[0]
    k = n1 @ W["self_attn.k_proj"].T + b[1]
    vv = n1 @ W["self_attn.v_proj"].T + b[2]
    q = q.reshape(B, T, nh, d).transpose(0, 2, 1, 3)  # [B, nh, T, d]
    k = k.reshape(B, T, nkv, d).transpose(0, 2, 1, 3)
    vv = vv.reshape(B, T, nkv, d).transpose(0, 2, 1, 3)
    cos, sin = rope_tables(v)
    qr = q * cos + rotate_half(q) * sin
    kr = k * cos + rotate_half(k) * sin
    rep = nh // nkv
    kr_full, v_full = np.repeat(kr, rep, axis=1), np.repeat(vv, rep, axis=1)  # repeat_kv
    s = qr @ kr_full.transpose(0, 1, 3, 2) / math.sqrt(d)
    s = np.where(mask(v), s, -np.inf)
    s = s - s.max(-1, keepdims=True)
    P = np.exp(s)
    P /= P.sum(-1, keepdims=True)
    o = P @ v_full  # [B, nh, T, d]
    attn = o.transpose(0, 2, 1, 3).reshape(B, T, nh * d)
    c.update(qr=qr, kr_full=kr_full, v_full=v_full, P=P, attn=attn, cos=cos, sin=sin)
    h = x + attn @ W["self_attn.o_proj"].T
    var2 = (h ** 2).mean(-1, keepdims=True)
    c["h"], c["r2"] = h, 1 / np.sqrt(var2 + EPS)
    c["xhat2"] = h * c["r2"]
    n2 = p["post_attention_norm"] * c["xhat2"]
    c["n2"] = n2
    gate, up = n2 @ W["mlp.gate_proj"].T, n2 @ W["mlp.up_proj"].T
    sig = 1 / (1 + np.exp(-gate))
    act = gate * sig * up
    c.update(gate=gate, up=up, sig=sig, act=act)
    return h + act @ W["mlp.down_proj"].T, c


def rmsnorm_backward(xin, r, xhat, w, dn):
    """n = w * x * r: returns dx and dw."""
    g = dn * w
    dx = r * g - xin * r ** 3 * (g * xin).mean(-1, keepdims=True)
    return dx, (dn * xhat).reshape(-1, xin.shape[-1]).sum(0)


def backward(v, p, c, R):
    B, T, H = R.shape
    nh, nkv, d = v["heads"], v["kv_heads"], v["head_dim"]
    W = p["W"]
    flat = lambda a: a.reshape(-1, a.shape[-1])
    g = {"W": {}}
    # MLP
    g["W"]["mlp.down_proj"] = flat(R).T @ flat(c["act"])
    d_act = R @ W["mlp.down_proj"]
    sig, gate, up = c["sig"], c["gate"], c["up"]
    d_up = d_act * gate * sig
    d_gate = d_act * up * (sig + gate * sig * (1 - sig))
    g["W"]["mlp.gate_proj"] = flat(d_gate).T @ flat(c["n2"])
    g["W"]["mlp.up_proj"] = flat(d_up).T @ flat(c["n2"])
    dn2 = d_gate @ W["mlp.gate_proj"] + d_up @ W["mlp.up_proj"]
    dh_norm, g["post_attention_norm"] = rmsnorm_backward(c["h"], c["r2"], c["xhat2"], p["post_attention_norm"], dn2)
    dh = R + dh_norm
    # attention
    g["W"]["self_attn.o_proj"] = flat(dh).T @ flat(c["attn"])
    d_attn = dh @ W["self_attn.o_proj"]
    do = d_attn.reshape(B, T, nh, d).transpose(0, 2, 1, 3)
    P = c["P"]
    dP = do @ c["v_full"].transpose(0, 1, 3, 2)
    dv_full = P.transpose(0, 1, 3, 2) @ do
    ds = P * (dP - (dP * P).sum(-1, keepdims=True)) / math.sqrt(d)
    dqr = ds @ c["kr_full"]
    dkr_full = ds.transpose(0, 1, 3, 2) @ c["qr"]
    rep = nh // nkv
    dkr = dkr_full.reshape(B, nkv, rep, T, d).sum(2)  # repeat_kv's adjoint
    dv = dv_full.reshape(B, nkv, rep, T, d).sum(2)
    cos, sin = c["cos"], c["sin"]
    # y = x cos + rotate_half(x) sin; rotate_half's adjoint is -rotate_half.
    unrope = lambda dy: dy * cos - rotate_half(dy * sin)
    dq, dk = unrope(dqr), unrope(dkr)
    dq = dq.transpose(0, 2, 1, 3).reshape(B, T, nh * d)
    dk = dk.transpose(0, 2, 1, 3).reshape(B, T, nkv * d)
    dv = dv.transpose(0, 2, 1, 3).reshape(B, T, nkv * d)
    dn1 = np.zeros((B, T, H))
    for name, dy, i in (("self_attn.q_proj", dq, 0), ("self_attn.k_proj", dk, 1), ("self_attn.v_proj", dv, 2)):
        g["W"][name] = flat(dy).T @ flat(c["n1"])
        dn1 += dy @ W[name]
        g.setdefault("b", [None] * 3)[i] = flat(dy).sum(0)
    dx_norm, g["input_norm"] = rmsnorm_backward(c["x"], c["r1"], c["xhat1"], p["input_norm"], dn1)
    g["x"] = dh + dx_norm
    if "aqlm" in p:
        g["codebooks"], g["scales"] = {}, {}
        for name in LINEARS:
            a = p["aqlm"][name]
            g["codebooks"][name], g["scales"][name] = dequantize_backward(a["codes"], a["codebooks"], a["scales"],
                                                                          g["W"][name])
    return g


def refresh(p):
    """Recomputes AQLM weights from codebooks and scales."""
    if "aqlm" in p:
        for name in LINEARS:
            a = p["aqlm"][name]
            p["W"][name] = dequantize(a["codes"], a["codebooks"], a["scales"])


def make(v, rng):
    H, F = v["hidden"], v["ffn"]
    p = {"W": {}, "input_norm": 1 + 0.2 * rng.standard_normal(H), "post_attention_norm": 1 + 0.2 * rng.standard_normal(H)}
    for name, (o, i) in shapes(v).items():
        p["W"][name] = rng.standard_normal((o, i)) / math.sqrt(i)
    KV, Q = v["kv_heads"] * v["head_dim"], v["heads"] * v["head_dim"]
    p["b"] = [0.3 * rng.standard_normal(n) if v.get("bias") else np.zeros(n) for n in (Q, KV, KV)]
    if v.get("aqlm"):
        a = v["aqlm"]
        M, K, gs = a["num_codebooks"], 2 ** a["nbits"], a["group_size"]
        p["aqlm"] = {}
        for name, (o, i) in shapes(v).items():
            p["aqlm"][name] = {
                "codes": rng.integers(0, K, size=(o, i // gs, M)),
                "codebooks": rng.standard_normal((M, K, gs)) / math.sqrt(M),
                "scales": (0.5 + rng.random(o)) / math.sqrt(i),
            }
        refresh(p)
    x = rng.standard_normal((v["batch"], v["seqlen"], H))
    R = rng.standard_normal((v["batch"], v["seqlen"], H))
    return p, x, R


def loss(v, p, x, R):
    refresh(p)
    return float((forward(v, p, x)[0] * R).sum())


def self_check(name, v, p, x, R, g):
    """Directional central differences for every gradient group; raises on a mismatch."""
    rng = np.random.default_rng(7)
    h = 1e-6
    groups = [("x", lambda: x, g["x"]), ("input_norm", lambda: p["input_norm"], g["input_norm"]),
              ("post_attention_norm", lambda: p["post_attention_norm"], g["post_attention_norm"])]
    if "aqlm" in p:
        for n in LINEARS:
            groups.append((n + ".codebooks", lambda n=n: p["aqlm"][n]["codebooks"], g["codebooks"][n]))
            groups.append((n + ".scales", lambda n=n: p["aqlm"][n]["scales"], g["scales"][n]))
    else:
        for n in LINEARS:
            groups.append((n, lambda n=n: p["W"][n], g["W"][n]))
    if v.get("bias"):
        for i in range(3):
            groups.append((f"bias{i}", lambda i=i: p["b"][i], g["b"][i]))
    for label, get, grad in groups:
        t = get()
        direction = rng.standard_normal(t.shape)
        t += h * direction
        up = loss(v, p, x, R)
        t -= 2 * h * direction
        down = loss(v, p, x, R)
        t += h * direction
        fd, analytic = (up - down) / (2 * h), float((grad * direction).sum())
        err = abs(fd - analytic) / max(abs(fd), 1e-12)
        if err > 1e-6:
            raise SystemExit(f"{name}: reference backward disagrees with finite differences for {label}: "
                             f"{analytic} vs {fd} (relative {err:.2e})")
    refresh(p)


def tolist(a):
    return np.asarray(a, dtype=np.float64).ravel().tolist()


def variant_fixture(name, v, seed):
    rng = np.random.default_rng(seed)
    p, x, R = make(v, rng)
    y, cache = forward(v, p, x)
    g = backward(v, p, cache, R)
    self_check(name, v, p, x, R, g)
    out = {
        "comment": "made by scripts/reference/block_reference.py; loss = sum(y * cotangent)",
        "shape": {"hidden": v["hidden"], "heads": v["heads"], "kv_heads": v["kv_heads"], "head_dim": v["head_dim"],
                  "intermediate": v["ffn"], "seqlen": v["seqlen"], "batch": v["batch"], "rms_norm_eps": EPS,
                  "rope_theta": v["theta"], "rope_scaling": v.get("scaling"), "attention_bias": bool(v.get("bias")),
                  "sliding_window": v.get("window", 0)},
        "rope_inv_freq": tolist(inv_freq(v["head_dim"], v["theta"], v.get("scaling"))),
        "x": tolist(x), "cotangent": tolist(R), "y": tolist(y),
        "input_norm": tolist(p["input_norm"]), "post_attention_norm": tolist(p["post_attention_norm"]),
        "weights": {n: tolist(p["W"][n]) for n in LINEARS},
        "grad": {"x": tolist(g["x"]), "input_norm": tolist(g["input_norm"]),
                 "post_attention_norm": tolist(g["post_attention_norm"]),
                 "weights": {n: tolist(g["W"][n]) for n in LINEARS}},
    }
    if v.get("bias"):
        out["bias"] = [tolist(b) for b in p["b"]]
        out["grad"]["bias"] = [tolist(b) for b in g["b"]]
    if "aqlm" in p:
        out["aqlm"] = dict(v["aqlm"], layers={
            n: {"codes": np.asarray(p["aqlm"][n]["codes"]).ravel().tolist(),
                "codebooks": tolist(p["aqlm"][n]["codebooks"]), "scales": tolist(p["aqlm"][n]["scales"])}
            for n in LINEARS})
        out["grad"]["codebooks"] = {n: tolist(g["codebooks"][n]) for n in LINEARS}
        out["grad"]["scales"] = {n: tolist(g["scales"][n]) for n in LINEARS}
    return out


def adam_fixture():
    """torch.optim.Adam's update (no weight decay, no amsgrad) on a 7-value parameter, 4 steps."""
    rng = np.random.default_rng(11)
    lr, b1, b2, eps = 1e-2, 0.9, 0.95, 1e-8
    param = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(4)]
    grads[2][3] = 0.0  # a zero gradient still moves the parameter through the first moment
    m, vv, p = np.zeros(7), np.zeros(7), param.copy()
    trajectory = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        vv = b2 * vv + (1 - b2) * g * g
        denom = np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
        trajectory.append(tolist(p))
    return {"comment": "torch.optim.Adam update rule in float64, made by scripts/reference/block_reference.py",
            "lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "initial": tolist(param),
            "gradients": [tolist(g) for g in grads], "after_step": trajectory}


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for seed, (name, v) in enumerate(VARIANTS.items(), start=1):
        with open(os.path.join(out_dir, f"block_{name}.json"), "w") as f:
            json.dump(variant_fixture(name, v, seed), f)
    with open(os.path.join(out_dir, "block_adam.json"), "w") as f:
        json.dump(adam_fixture(), f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
