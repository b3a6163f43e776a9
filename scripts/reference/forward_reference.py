#!/usr/bin/env python3
"""Independent float64 numpy forward pass of Llama / Mistral / Qwen2 decoders.

The runtime's C++ tests compare against numbers this script computes. It shares no code
with the C++ side: it reads llama2.c .bin, GGUF (python `gguf` package, dequantized with
gguf.quants.dequantize) and Hugging Face safetensors folders itself, and applies RoPE in the
layout the file stores (interleaved pairs for llama2.c and GGUF llama, where the C++
loaders un-permute rows to the half-split layout instead).

Subcommands:
  stories   check the reference against the golden values in shared/README.md
  smollm2   write tests/fixtures/runtime/smollm2_* (prompt logits, WikiText-2 NLL of K windows)
  tiny      run make_tiny_models.py's folders and write their reference logits
  rope      RoPE inverse frequencies and angles of real configurations
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("AQLM_SHARED_DIR", REPO.parent / "shared"))
FIXTURES = REPO / "tests" / "fixtures" / "runtime"
SMOLLM2 = Path(os.environ.get("AQLM_MODELS_DIR", Path.home() / ".cache" / "aqlm-studio" / "models")) / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"


# ----------------------------------------------------------------------------- the model

@dataclass
class Config:
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    eps: float
    rope_theta: float
    rope_scaling: dict | None = None
    sliding_window: int = 0
    rope_layout: str = "half"  # "half" (HF) or "interleaved" (llama2.c, GGUF llama)


@dataclass
class Weights:
    embed: np.ndarray
    head: np.ndarray
    final_norm: np.ndarray
    layers: list = field(default_factory=list)  # dicts: attn_norm, mlp_norm, q, k, v, o, gate, up, down, bq, bk, bv


def inverse_frequencies(cfg: Config) -> np.ndarray:
    """HF's rope_init functions (default, linear, llama3) in float64."""
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim))
    s = cfg.rope_scaling
    if not s:
        return inv
    kind = s.get("rope_type", s.get("type"))
    if kind == "linear":
        return inv / s["factor"]
    if kind == "llama3":
        factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        out = np.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < old / high) & ~(wavelen > old / low)
        return np.where(medium, smoothed, out)
    raise ValueError(f"rope scaling {kind}")


def apply_rope(x: np.ndarray, positions: np.ndarray, cfg: Config) -> np.ndarray:
    """x: [T, heads, head_dim]."""
    ang = positions[:, None].astype(np.float64) * inverse_frequencies(cfg)[None, :]  # [T, hd/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if cfg.rope_layout == "half":
        half = cfg.head_dim // 2
        a, b = x[..., :half], x[..., half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = b * cos + a * sin
    return out


def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def hidden_states(W: Weights, cfg: Config, ids: list[int]) -> np.ndarray:
    """Final-normed hidden states [T, hidden] of a sequence starting at position 0."""
    T = len(ids)
    pos = np.arange(T)
    group = cfg.heads // cfg.kv_heads
    x = W.embed[np.asarray(ids)]
    i, j = np.meshgrid(pos, pos, indexing="ij")
    visible = j <= i
    if cfg.sliding_window:
        visible &= j > i - cfg.sliding_window
    for L in W.layers:
        h = rmsnorm(x, L["attn_norm"], cfg.eps)
        q = h @ L["q"].T + L.get("bq", 0)
        k = h @ L["k"].T + L.get("bk", 0)
        v = h @ L["v"].T + L.get("bv", 0)
        q = apply_rope(q.reshape(T, cfg.heads, cfg.head_dim), pos, cfg)
        k = apply_rope(k.reshape(T, cfg.kv_heads, cfg.head_dim), pos, cfg)
        v = v.reshape(T, cfg.kv_heads, cfg.head_dim)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        att = np.empty((T, cfg.heads, cfg.head_dim))
        for hh in range(cfg.heads):
            s = q[:, hh, :] @ k[:, hh, :].T / math.sqrt(cfg.head_dim)
            s = np.where(visible, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hh, :] = s @ v[:, hh, :]
        x = x + att.reshape(T, -1) @ L["o"].T
        h = rmsnorm(x, L["mlp_norm"], cfg.eps)
        g = h @ L["gate"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ L["up"].T)) @ L["down"].T
    return rmsnorm(x, W.final_norm, cfg.eps)


def logits(W: Weights, cfg: Config, ids: list[int]) -> np.ndarray:
    return hidden_states(W, cfg, ids) @ W.head.T


def window_nll(W: Weights, cfg: Config, ids: list[int], chunk: int = 256) -> float:
    """Sum of -log p(ids[t+1] | ids[:t+1]) over the window (the LM head runs in chunks)."""
    h = hidden_states(W, cfg, ids)
    total = 0.0
    for t0 in range(0, len(ids) - 1, chunk):
        rows = h[t0:min(t0 + chunk, len(ids) - 1)] @ W.head.T
        mx = rows.max(axis=1, keepdims=True)
        lse = (mx + np.log(np.exp(rows - mx).sum(axis=1, keepdims=True)))[:, 0]
        targets = np.asarray(ids[t0 + 1:t0 + 1 + rows.shape[0]])
        total += float(np.sum(lse - rows[np.arange(rows.shape[0]), targets]))
    return total


# ----------------------------------------------------------------------------- readers

def read_llama2c(path: Path) -> tuple[Weights, Config]:
    raw = path.read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    f = np.frombuffer(raw, dtype="<f4", offset=28).astype(np.float64)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = f[off:off + n].reshape(shape)
        off += n
        return a

    emb = take(vocab, dim)
    att_norm = take(n_layers, dim)
    wq, wk = take(n_layers, dim, dim), take(n_layers, n_kv * hd, dim)
    wv, wo = take(n_layers, n_kv * hd, dim), take(n_layers, dim, dim)
    ffn_norm = take(n_layers, dim)
    w1, w2, w3 = take(n_layers, hidden, dim), take(n_layers, dim, hidden), take(n_layers, hidden, dim)
    final = take(dim)
    take(seq_len, hd // 2)
    take(seq_len, hd // 2)  # legacy freq_cis real/imag
    head = emb if shared else take(vocab, dim)
    W = Weights(embed=emb, head=head, final_norm=final)
    for l in range(n_layers):
        W.layers.append(dict(attn_norm=att_norm[l], mlp_norm=ffn_norm[l], q=wq[l], k=wk[l], v=wv[l], o=wo[l],
                             gate=w1[l], down=w2[l], up=w3[l]))
    cfg = Config(hidden=dim, ffn=hidden, layers=n_layers, heads=n_heads, kv_heads=n_kv, head_dim=hd, vocab=vocab,
                 eps=1e-5, rope_theta=10000.0, rope_layout="interleaved")
    return W, cfg


def read_gguf(path: Path) -> tuple[Weights, Config, dict]:
    import gguf
    r = gguf.GGUFReader(str(path))
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.ggml.")}
    tok = {k: r.fields[k].contents() for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges")}
    arch = meta["general.architecture"]
    assert arch == "llama", arch
    t = {x.name: np.asarray(gguf.quants.dequantize(x.data, x.tensor_type), dtype=np.float64) for x in r.tensors}
    heads = meta[f"{arch}.attention.head_count"]
    hidden = meta[f"{arch}.embedding_length"]
    cfg = Config(hidden=hidden, ffn=meta[f"{arch}.feed_forward_length"], layers=meta[f"{arch}.block_count"],
                 heads=heads, kv_heads=meta[f"{arch}.attention.head_count_kv"], head_dim=hidden // heads,
                 vocab=t["token_embd.weight"].shape[0], eps=float(meta[f"{arch}.attention.layer_norm_rms_epsilon"]),
                 rope_theta=float(meta[f"{arch}.rope.freq_base"]), rope_layout="interleaved")
    emb = t["token_embd.weight"]
    W = Weights(embed=emb, head=t.get("output.weight", emb), final_norm=t["output_norm.weight"])
    for l in range(cfg.layers):
        b = f"blk.{l}."
        W.layers.append(dict(attn_norm=t[b + "attn_norm.weight"], mlp_norm=t[b + "ffn_norm.weight"],
                             q=t[b + "attn_q.weight"], k=t[b + "attn_k.weight"], v=t[b + "attn_v.weight"],
                             o=t[b + "attn_output.weight"], gate=t[b + "ffn_gate.weight"],
                             up=t[b + "ffn_up.weight"], down=t[b + "ffn_down.weight"]))
    return W, cfg, tok


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Minimal reader (F32/F16/BF16, I8/I16 codes) so BF16 needs no torch."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[8 + n + a:8 + n + b]
        if info["dtype"] == "F32":
            arr = np.frombuffer(buf, "<f4").astype(np.float64)
        elif info["dtype"] == "F16":
            arr = np.frombuffer(buf, "<f2").astype(np.float64)
        elif info["dtype"] == "BF16":
            arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        elif info["dtype"] in ("I8", "I16"):
            arr = np.frombuffer(buf, "<i1" if info["dtype"] == "I8" else "<i2").astype(np.int64)
        else:
            raise ValueError(info["dtype"])
        out[name] = arr.reshape(info["shape"])
    return out


def aqlm_dequantize(t: dict, prefix: str, config: dict) -> np.ndarray:
    """W[o, j*g + i] = scale[o] * sum_m codebooks[m, code[o, j, m], 0, i] (REFERENCE.md section 5)."""
    q = config["quantization_config"]
    B = q["nbits_per_codebook"]
    codes = t[prefix + ".codes"] & ((1 << B) - 1)  # the unsigned index from its two's complement
    books = t[prefix + ".codebooks"][:, :, 0, :]  # [M, 2^B, g]
    out, groups, M = codes.shape
    w = np.zeros((out, groups, books.shape[2]))
    for m in range(M):
        w += books[m][codes[:, :, m]]
    return (w * t[prefix + ".scales"].reshape(out, 1, 1)).reshape(out, -1)


def read_hf_folder(folder: Path) -> tuple[Weights, Config]:
    c = json.loads((folder / "config.json").read_text())
    t = read_safetensors(folder / "model.safetensors")
    heads = c["num_attention_heads"]
    window = c.get("sliding_window") or 0
    if c["model_type"] == "qwen2" and not c.get("use_sliding_window", False):
        window = 0
    cfg = Config(hidden=c["hidden_size"], ffn=c["intermediate_size"], layers=c["num_hidden_layers"], heads=heads,
                 kv_heads=c.get("num_key_value_heads", heads), head_dim=c.get("head_dim", c["hidden_size"] // heads),
                 vocab=c["vocab_size"], eps=c["rms_norm_eps"], rope_theta=c.get("rope_theta", 10000.0),
                 rope_scaling=c.get("rope_scaling"), sliding_window=window)
    emb = t["model.embed_tokens.weight"]
    W = Weights(embed=emb, head=t.get("lm_head.weight", emb), final_norm=t["model.norm.weight"])
    for l in range(cfg.layers):
        p = f"model.layers.{l}."
        L = dict(attn_norm=t[p + "input_layernorm.weight"], mlp_norm=t[p + "post_attention_layernorm.weight"])
        for short, name in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"), ("v", "self_attn.v_proj"),
                            ("o", "self_attn.o_proj"), ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                            ("down", "mlp.down_proj")):
            L[short] = t[p + name + ".weight"] if p + name + ".weight" in t else aqlm_dequantize(t, p + name, c)
            if p + name + ".bias" in t:
                L["b" + short] = t[p + name + ".bias"]
        W.layers.append(L)
    return W, cfg


# ----------------------------------------------------------------------------- llama2.c tokenizer (for the golden check)

def read_llama2c_tokenizer(path: Path):
    raw = path.read_bytes()
    off = 4
    vocab, scores = [], []
    while off < len(raw):
        score, n = struct.unpack("<fi", raw[off:off + 8])
        vocab.append(raw[off + 8:off + 8 + n])
        scores.append(score)
        off += 8 + n
    return vocab, scores


def llama2c_encode(text: str, vocab, scores) -> list[int]:
    lookup = {p: i for i, p in enumerate(vocab)}
    ids = [1, lookup[b" "]]
    for ch in text:
        b = ch.encode("utf-8")
        ids.extend([lookup[b]] if b in lookup else [c + 3 for c in b])
    while True:
        best, best_i, best_id = -1e10, -1, -1
        for i in range(1, len(ids) - 1):  # never merge BOS
            m = lookup.get(vocab[ids[i]] + vocab[ids[i + 1]])
            if m is not None and scores[m] > best:
                best, best_i, best_id = scores[m], i, m
        if best_i < 0:
            return ids
        ids[best_i:best_i + 2] = [best_id]


def llama2c_decode(ids: list[int], vocab) -> str:
    out = b""
    for i in ids:
        p = vocab[i]
        if p.startswith(b"<0x") and p.endswith(b">") and len(p) == 6:
            p = bytes([int(p[3:5], 16)])
        out += p
    return out.decode("utf-8", errors="replace")


def cmd_stories(_args) -> None:
    folder = SHARED / "models" / "stories260K"
    W, cfg = read_llama2c(folder / "stories260K.bin")
    vocab, scores = read_llama2c_tokenizer(folder / "tok512.bin")
    ids = [1]
    for _ in range(80):
        ids.append(int(np.argmax(logits(W, cfg, ids)[-1])))
    print("greedy ids:", " ".join(map(str, ids[:30])))
    print("greedy text:", repr(llama2c_decode(ids[1:], vocab)))
    story = (SHARED / "data" / "tinystories-sample.txt").read_text().split("<|endoftext|>")[0].strip()
    sids = llama2c_encode(story, vocab, scores)
    nll = window_nll(W, cfg, sids) / (len(sids) - 1)
    print(f"story: {len(sids)} ids, first {sids[:20]}, mean NLL {nll:.6f}, ppl {math.exp(nll):.4f}")


# ----------------------------------------------------------------------------- SmolLM2

def smollm2_hf_tokenizer(tok: dict):
    """SmolLM2's published tokenizer structure over the GGUF vocab and merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    vocab = {t: i for i, t in enumerate(tok["tokenizer.ggml.tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in tok["tokenizer.ggml.merges"]]
    t = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    t.decoder = decoders.ByteLevel()
    return t


SMOLLM2_PROMPT = "The capital of France is Paris. The capital of Germany is"


def ids_checksum(ids) -> int:
    """Polynomial hash mod 2^61 - 1 (the C++ test recomputes it over our tokenizer's ids)."""
    h, mod = 0, (1 << 61) - 1
    for i in ids:
        h = (h * 1000003 + int(i) + 1) % mod
    return h


def cmd_smollm2(args) -> None:
    W, cfg, tok = read_gguf(SMOLLM2)
    hf = smollm2_hf_tokenizer(tok)
    FIXTURES.mkdir(parents=True, exist_ok=True)

    prompt_ids = hf.encode(SMOLLM2_PROMPT).ids
    lg = logits(W, cfg, prompt_ids)
    (FIXTURES / "smollm2_prompt_logits.f32").write_bytes(lg.astype("<f4").tobytes())
    top = [int(i) for i in np.argsort(-lg[-1])[:5]]
    print("prompt ids", prompt_ids, "top-5 next", top, [hf.decode([i]) for i in top])

    text = (SHARED / "data" / "wikitext2-test.txt").read_text()
    ids = hf.encode(text).ids
    seqlen, K = args.seqlen, args.windows
    sums = [window_nll(W, cfg, ids[w * seqlen:(w + 1) * seqlen]) for w in range(K)]
    nll = sum(sums) / (K * (seqlen - 1))
    print(f"wikitext2: {len(ids)} tokens; first {K} windows of {seqlen}: NLL {nll:.6f} ppl {math.exp(nll):.4f}")
    ref = {
        "source": "scripts/reference/forward_reference.py smollm2 (numpy float64 over gguf.quants.dequantize)",
        "prompt": SMOLLM2_PROMPT,
        "prompt_ids": prompt_ids,
        "prompt_logits_file": "smollm2_prompt_logits.f32",
        "prompt_logits_shape": list(lg.shape),
        "prompt_top5_next": top,
        "wikitext2": {
            "file": "data/wikitext2-test.txt",
            "tokens": len(ids),
            "ids_checksum": ids_checksum(ids),
            "window_ids": ids[:K * seqlen],
            "seqlen": seqlen,
            "windows": K,
            "window_nll_sums": sums,
            "nll": nll,
            "ppl": math.exp(nll),
        },
    }
    (FIXTURES / "smollm2_reference.json").write_text(json.dumps(ref, indent=1) + "\n")


# ----------------------------------------------------------------------------- tiny synthetic models

def cmd_tiny(_args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_tiny_models
    for name in make_tiny_models.write_all(FIXTURES):
        folder = FIXTURES / name
        W, cfg = read_hf_folder(folder)
        rng = np.random.default_rng(len(name))
        ids = [int(i) for i in rng.integers(0, cfg.vocab, size=13)]
        lg = logits(W, cfg, ids)
        ref = {"source": "scripts/reference/forward_reference.py tiny (numpy float64)", "ids": ids,
               "logits": [[float(v) for v in row] for row in lg],
               "inv_freq": [float(v) for v in inverse_frequencies(cfg)],
               "mean_nll": window_nll(W, cfg, ids) / (len(ids) - 1)}
        (folder / "reference.json").write_text(json.dumps(ref) + "\n")
        print(name, "ids", ids, "max |logit|", float(np.abs(lg).max()))


def cmd_rope(_args) -> None:
    """RoPE inverse frequencies of real configurations (Llama-3.1-8B's llama3 scaling, a linear
    factor, none) for tests/runtime/rope_table_test.cpp."""
    cases = [
        dict(name="llama3.1-8b", head_dim=128, rope_theta=500000.0,
             rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                               original_max_position_embeddings=8192)),
        dict(name="linear-4", head_dim=64, rope_theta=10000.0, rope_scaling=dict(rope_type="linear", factor=4.0)),
        dict(name="plain-smollm2", head_dim=64, rope_theta=100000.0, rope_scaling=None),
    ]
    for c in cases:
        cfg = Config(hidden=c["head_dim"], ffn=1, layers=1, heads=1, kv_heads=1, head_dim=c["head_dim"], vocab=1,
                     eps=1e-5, rope_theta=c["rope_theta"], rope_scaling=c["rope_scaling"])
        c["inv_freq"] = [float(v) for v in inverse_frequencies(cfg)]
        # cos/sin at a far position, where float32 angles would already be off
        ang = 4000 * inverse_frequencies(cfg)
        c["cos_4000"], c["sin_4000"] = [float(v) for v in np.cos(ang)], [float(v) for v in np.sin(ang)]
    (FIXTURES / "rope_cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print("wrote rope_cases.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("stories")
    s = sub.add_parser("smollm2")
    s.add_argument("--seqlen", type=int, default=2048)
    s.add_argument("--windows", type=int, default=2)
    sub.add_parser("tiny")
    sub.add_parser("rope")
    args = ap.parse_args()
    {"stories": cmd_stories, "smollm2": cmd_smollm2, "tiny": cmd_tiny, "rope": cmd_rope}[args.cmd](args)


if __name__ == "__main__":
    main()
