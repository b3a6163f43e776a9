#!/usr/bin/env python3
"""Writes the GGUF fixtures of tests/model with the reference `gguf` package (gguf.GGUFWriter)
and the expected values the C++ reader must produce (gguf.quants.dequantize, numpy).

usage: make_gguf_fixtures.py OUT_DIR      (the tests use tests/fixtures/model)

Files:
  types_v3.gguf      one small tensor of every type the reader dequantizes, metadata of every
                     value type, general.alignment 64
  types_v2.gguf      the same bytes with the version field set to 2 (v2 and v3 share the layout)
  types_expected.{json,f32}  per tensor: ggml type, HF shape and the dequantized float32 values
  tiny_llama.gguf    a 2-layer llama (hidden 32, 4 heads, 2 KV heads, head_dim 8, ffn 64, vocab 48)
                     with mixed tensor types, an untied output, Llama-3 rope_freqs, a gpt2
                     tokenizer and a chat template; q/k stored as llama.cpp's converter stores them
  tiny_qwen2.gguf    a 1-layer qwen2 with q/k/v biases and a tied embedding
  tiny_expected.{json,f32}  "MODEL:HF name" -> the tensor the model must load as
  bad_*.gguf         complete models but for one defect each (architecture phi3, a missing
                     tensor, a missing metadata key, a shape the config contradicts, an unknown
                     tensor, an IQ4_NL tensor, rope_freqs not following Llama 3.1's scaling)
  rope_linear.gguf   linear rope scaling (factor 2) in the metadata
"""
import json
import math
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

rng = np.random.default_rng(20240611)


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8)


def random_kquant_blocks(qtype, n_blocks):
    """Random K-quant super-blocks with finite, moderate f16 scales (random bytes elsewhere)."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    d = f16_bytes(rng.uniform(0.001, 0.05, size=n_blocks)).reshape(n_blocks, 2)
    dmin = f16_bytes(rng.uniform(0.001, 0.05, size=n_blocks)).reshape(n_blocks, 2)
    if qtype == T.Q6_K:
        raw[:, 208:210] = d  # {ql[128], qh[64], scales[16], d}
    else:
        raw[:, 0:2] = d  # {d, dmin, scales[12], ...}
        raw[:, 2:4] = dmin
    return raw


def quantized(values, qtype):
    """(rows, cols) float32 -> raw bytes of qtype, shaped (rows, bytes per row)."""
    if qtype == T.F32:
        return values.astype(np.float32)
    if qtype == T.F16:
        return values.astype(np.float16)
    if qtype == T.IQ4_NL:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        return rng.integers(0, 256, size=(values.shape[0], values.shape[1] // block_size * type_size), dtype=np.uint8)
    return quantize(values.astype(np.float32), qtype)


def raw_tensor(rows, cols, qtype):
    """Random raw bytes of a (rows, cols) tensor of qtype; K-quants and Q5_x built block by block."""
    if qtype in (T.Q4_K, T.Q5_K, T.Q6_K):
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        return random_kquant_blocks(qtype, rows * cols // block_size).reshape(rows, -1)
    values = rng.normal(0, 1, size=(rows, cols)).astype(np.float32)
    if qtype == T.BF16:
        return quantize(values, T.BF16)
    return quantized(values, qtype)


def add(writer, name, raw, qtype):
    if qtype in (T.F32, T.F16):
        writer.add_tensor(name, raw)
    else:
        writer.add_tensor(name, raw, raw_dtype=qtype)


def hf_shape_of(raw, qtype):
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if qtype in (T.F32, T.F16):
        return list(raw.shape)
    return [raw.shape[0], raw.shape[1] // type_size * block_size]


def write_types(out):
    path = os.path.join(out, "types_v3.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_custom_alignment(64)
    # Metadata of every value type, read back by the test.
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_uint64("test.u64", 18000000000000000000)
    w.add_int64("test.i64", -9000000000000000000)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo GGUF")
    w.add_array("test.array_i32", [1, -2, 3])
    w.add_array("test.array_str", ["a", "bc", ""])
    w.add_array("test.array_long", list(range(100)))
    w.add_float32("test.f32_eps", 1e-5)  # not exact in float32: reads back as 1e-05 (shortest decimal)
    w.add_array("test.array_f32", [0.1, -2.5])  # array elements keep their exact float32 value
    expected = {}
    shapes = {T.F32: (3, 8), T.F16: (3, 8), T.BF16: (2, 16), T.Q8_0: (3, 64), T.Q4_0: (2, 64), T.Q4_1: (2, 96),
              T.Q5_0: (2, 64), T.Q5_1: (2, 64), T.Q4_K: (2, 256), T.Q5_K: (2, 512), T.Q6_K: (3, 256)}
    for qtype, (rows, cols) in shapes.items():
        raw = raw_tensor(rows, cols, qtype)
        name = "t." + qtype.name.lower()
        add(w, name, raw, qtype)
        values = dequantize(raw, qtype).astype(np.float32).reshape(rows, cols)
        expected[name] = {"type": qtype.name, "shape": [rows, cols], "values": values}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    assert data[4:8] == (3).to_bytes(4, "little")
    data[4:8] = (2).to_bytes(4, "little")
    with open(os.path.join(out, "types_v2.gguf"), "wb") as fh:
        fh.write(data)
    write_expected(os.path.join(out, "types_expected"), expected)


def write_expected(stem, expected):
    """STEM.json: {name: {shape, offset, count, ...}}; STEM.f32: the values, little-endian float32
    (binary, so the test compares bit for bit without a decimal round trip)."""
    index, blobs, offset = {}, [], 0
    for name, entry in expected.items():
        values = np.ascontiguousarray(entry["values"], dtype="<f4").reshape(-1)
        index[name] = {k: v for k, v in entry.items() if k != "values"}
        index[name].update(offset=offset, count=int(values.size))
        blobs.append(values.tobytes())
        offset += values.size
    with open(stem + ".json", "w") as fh:
        json.dump(index, fh, indent=0)
    with open(stem + ".f32", "wb") as fh:
        fh.write(b"".join(blobs))


def llama_cpp_permute(w, n_head):
    """What convert_hf_to_gguf.py does to q/k: HF half-split rows -> interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_permute(w, n_head):
    """transformers' convert_llama_weights_to_hf.py permute: interleaved pairs -> half-split rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(theta, head_dim, factor, low, high, original):
    out = []
    for i in range(head_dim // 2):
        freq = 1.0 / theta ** (2 * i / head_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < original / high:
            out.append(1.0)
        elif wavelen > original / low:
            out.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def add_tokenizer(w, vocab):
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [chr(ord("a") + i % 26) * (1 + i // 26)
                                                                   for i in range(vocab - 3)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (vocab - 3))
    w.add_token_merges(["a a", "b b"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")


def write_model(out, name, arch, layers, untied, biases, rope_freqs, types, expected, extra=None, skip=(),
                after=None):
    hidden, heads, kv_heads, ffn, vocab = 32, 4, 2, 64, 48
    head_dim = hidden // heads
    path = os.path.join(out, name)
    w = gguf.GGUFWriter(path, arch=arch)
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(500000.0)
    add_tokenizer(w, vocab)
    if extra:
        extra(w)
    tensors = {}

    def put(gguf_name, hf_name, hf_values, qtype, permute_heads=0):
        if gguf_name in skip:
            return
        stored = llama_cpp_permute(hf_values, permute_heads) if permute_heads else hf_values
        if stored.ndim == 1:
            add(w, gguf_name, stored.astype(np.float32), T.F32)
            tensors[hf_name] = stored.astype(np.float32)
            return
        raw = quantized(stored, qtype)
        add(w, gguf_name, raw, qtype)
        if expected is None:
            return
        back = dequantize(raw, qtype).astype(np.float32).reshape(stored.shape)
        tensors[hf_name] = hf_permute(back, permute_heads) if permute_heads else back

    def rand(*shape):
        return rng.normal(0, 0.5, size=shape).astype(np.float32)

    put("token_embd.weight", "model.embed_tokens.weight", rand(vocab, hidden), types["embed"])
    for l in range(layers):
        p, b = f"model.layers.{l}.", f"blk.{l}."
        permute = arch == "llama"
        put(b + "attn_norm.weight", p + "input_layernorm.weight", rand(hidden) + 1, T.F32)
        put(b + "attn_q.weight", p + "self_attn.q_proj.weight", rand(hidden, hidden), types["q"], heads if permute else 0)
        put(b + "attn_k.weight", p + "self_attn.k_proj.weight", rand(kv_heads * head_dim, hidden), types["k"],
            kv_heads if permute else 0)
        put(b + "attn_v.weight", p + "self_attn.v_proj.weight", rand(kv_heads * head_dim, hidden), types["v"])
        if biases:
            put(b + "attn_q.bias", p + "self_attn.q_proj.bias", rand(hidden), T.F32)
            put(b + "attn_k.bias", p + "self_attn.k_proj.bias", rand(kv_heads * head_dim), T.F32)
            put(b + "attn_v.bias", p + "self_attn.v_proj.bias", rand(kv_heads * head_dim), T.F32)
        put(b + "attn_output.weight", p + "self_attn.o_proj.weight", rand(hidden, hidden), types["o"])
        put(b + "ffn_norm.weight", p + "post_attention_layernorm.weight", rand(hidden) + 1, T.F32)
        put(b + "ffn_gate.weight", p + "mlp.gate_proj.weight", rand(ffn, hidden), types["ffn"])
        put(b + "ffn_up.weight", p + "mlp.up_proj.weight", rand(ffn, hidden), types["ffn"])
        put(b + "ffn_down.weight", p + "mlp.down_proj.weight", rand(hidden, ffn), types["down"])
    put("output_norm.weight", "model.norm.weight", rand(hidden) + 1, T.F32)
    if untied:
        put("output.weight", "lm_head.weight", rand(vocab, hidden), types["output"])
    if rope_freqs:
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(500000.0, head_dim, 8.0, 1.0, 4.0, 8192))
    if after:
        after(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if expected is not None:
        for k, v in tensors.items():
            expected[name + ":" + k] = {"shape": list(v.shape), "values": v}


def main(out):
    os.makedirs(out, exist_ok=True)
    write_types(out)
    llama_types = {"embed": T.Q8_0, "q": T.Q8_0, "k": T.F16, "v": T.Q4_0, "o": T.BF16, "ffn": T.Q4_1,
                   "down": T.Q4_1, "output": T.F16}
    qwen_types = {"embed": T.F32, "q": T.Q8_0, "k": T.Q8_0, "v": T.F32, "o": T.Q4_0, "ffn": T.Q8_0,
                  "down": T.Q8_0, "output": T.F32}
    expected = {}
    write_model(out, "tiny_llama.gguf", "llama", 2, True, False, True, llama_types, expected)
    write_model(out, "tiny_qwen2.gguf", "qwen2", 1, False, True, False, qwen_types, expected)
    write_expected(os.path.join(out, "tiny_expected"), expected)

    # Error paths: each a complete model but for one defect.
    write_model(out, "bad_arch.gguf", "phi3", 1, False, False, False, qwen_types, None)
    write_model(out, "bad_missing_tensor.gguf", "llama", 1, False, False, False, qwen_types, None,
                skip=("blk.0.ffn_up.weight",))

    def no_block_count(w):
        del w.kv_data[0]["llama.block_count"]
    write_model(out, "bad_missing_key.gguf", "llama", 1, False, False, False, qwen_types, None,
                extra=lambda w: None, after=no_block_count)

    def wrong_ffn(w):
        w.add_feed_forward_length(60)  # the tensors say 64
    write_model(out, "bad_shape.gguf", "llama", 1, False, False, False, qwen_types, None, after=wrong_ffn)

    def unknown_tensor(w):
        w.add_tensor("blk.0.attn_q_norm.weight", np.ones(8, dtype=np.float32))
    write_model(out, "bad_unknown_tensor.gguf", "llama", 1, False, False, False, qwen_types, None,
                extra=unknown_tensor)
    def wrong_rope_freqs(w):  # Llama-3 factors computed with low_freq_factor 2: not Llama 3.1's 1
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(500000.0, 8, 8.0, 2.0, 4.0, 8192))
    write_model(out, "bad_rope_freqs.gguf", "llama", 1, False, False, False, qwen_types, None, after=wrong_rope_freqs)

    def linear_rope(w):
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(2.0)
    write_model(out, "rope_linear.gguf", "llama", 1, False, False, False, qwen_types, None, after=linear_rope)
    # IQ4_NL: a real GGML type this program does not dequantize (random bytes; never decoded).
    write_model(out, "bad_type.gguf", "llama", 1, False, False, False, dict(qwen_types, ffn=T.IQ4_NL), None)

if __name__ == "__main__":
    main(sys.argv[1])
