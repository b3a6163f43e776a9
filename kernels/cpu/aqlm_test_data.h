#pragma once
// Test and benchmark data for the AQLM kernels (CPU and CUDA): layers that own their
// codes, codebooks and scales in the Hugging Face storage layout, drawn either from the
// fixed integer recipe of scripts/reference/aqlm_gemv_fixture.py (so the numpy reference
// can compute expected values) or from fresh random numbers.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv.h"

namespace aqlm::test {

// xorshift64*, exactly as scripts/reference/aqlm_gemv_fixture.py writes it.
class XorShift64Star {
 public:
  explicit XorShift64Star(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 2685821657736338717ull;
  }

 private:
  uint64_t s_;
};

struct AqlmLayer {
  int64_t out = 0, in = 0;
  int M = 0, B = 0, g = 0, code_bytes = 0;
  std::vector<uint8_t> codes;        // stored as the format stores them (two's complement)
  std::vector<uint16_t> codebooks;   // fp16 bits
  std::vector<uint16_t> scales;      // fp16 bits

  AqlmView view() const {
    AqlmView v;
    v.codes = codes.data();
    v.codebooks = codebooks.data();
    v.scales = scales.data();
    v.out = out;
    v.in = in;
    v.num_codebooks = M;
    v.nbits = B;
    v.group_size = g;
    v.code_bytes = code_bytes;
    return v;
  }
  // Writes unsigned code c (< 2^B) at index i the way pack_int_data does: codes >= 2^(B-1)
  // become negative, i.e. sign-extended two's complement in the storage integer.
  void store_code(int64_t i, uint32_t c) {
    const int64_t value = c >= (1u << (B - 1)) ? int64_t(c) - (int64_t(1) << B) : int64_t(c);
    if (code_bytes == 1) {
      codes[size_t(i)] = uint8_t(int8_t(value));
    } else {
      const uint16_t bits = uint16_t(int16_t(value));
      codes[size_t(2 * i)] = uint8_t(bits & 0xff);  // little-endian, as safetensors stores it
      codes[size_t(2 * i + 1)] = uint8_t(bits >> 8);
    }
  }
  void allocate(int64_t out_, int64_t in_, int M_, int B_, int g_, int code_bytes_) {
    out = out_, in = in_, M = M_, B = B_, g = g_, code_bytes = code_bytes_;
    codes.assign(size_t(out * (in / g) * M * code_bytes), 0);
    codebooks.assign(size_t(M) * (size_t(1) << B) * size_t(g), 0);
    scales.assign(size_t(out), 0);
  }
};

// The fixture recipe: codes, codebooks (k - 1024) / 2048, scales (k + 512) / 16384, then
// x (k - 2^23) / 2^22 for n tokens; every value exact in its storage type.
inline AqlmLayer recipe_layer(int64_t out, int64_t in, int M, int B, int g, int code_bytes, int64_t n,
                              uint64_t seed, std::vector<float>& x) {
  XorShift64Star rng(seed);
  AqlmLayer l;
  l.allocate(out, in, M, B, g, code_bytes);
  const int64_t count = out * (in / g) * M;
  for (int64_t i = 0; i < count; ++i) l.store_code(i, uint32_t((rng.next() >> 40) % (uint64_t(1) << B)));
  for (auto& v : l.codebooks) v = f32_to_f16(float(int64_t(rng.next() >> 53) - 1024) / 2048.0f);
  for (auto& v : l.scales) v = f32_to_f16(float(int64_t(rng.next() >> 54) + 512) / 16384.0f);
  x.resize(size_t(n * in));
  for (auto& v : x) v = float(int64_t(rng.next() >> 40) - (int64_t(1) << 23)) / float(1 << 22);
  return l;
}

// Fresh random layer: uniform codes, codebook entries ~ N(0, 1) / sqrt(M) rounded to fp16,
// scales in [0.5, 1.5) / sqrt(in) (outputs of order |x|, as in a trained layer).
inline AqlmLayer random_layer(int64_t out, int64_t in, int M, int B, int g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  AqlmLayer l;
  l.allocate(out, in, M, B, g, B <= 8 ? 1 : 2);
  std::uniform_int_distribution<uint32_t> code(0, (1u << B) - 1);
  const int64_t count = out * (in / g) * M;
  for (int64_t i = 0; i < count; ++i) l.store_code(i, code(rng));
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(float(M)));
  for (auto& v : l.codebooks) v = f32_to_f16(normal(rng));
  std::uniform_real_distribution<float> scale(0.5f, 1.5f);
  for (auto& v : l.scales) v = f32_to_f16(scale(rng) / std::sqrt(float(in)));
  return l;
}

// Sum over k of |x[t, k] * W[o, k]| in double, [n, out]: the scale of the rounding error of
// any summation order.
inline std::vector<double> abs_products(const AqlmView& w, const float* x, int64_t n, int64_t ldx) {
  std::vector<double> s(static_cast<size_t>(n * w.out), 0.0);
  const int64_t K = w.codebook_size(), g = w.group_size;
  std::vector<double> wk(static_cast<size_t>(g));
  for (int64_t o = 0; o < w.out; ++o) {
    const double scale = f16_to_f32(w.scales[o]);
    for (int64_t j = 0; j < w.groups(); ++j) {
      std::fill(wk.begin(), wk.end(), 0.0);
      for (int m = 0; m < w.num_codebooks; ++m)
        for (int64_t i = 0; i < g; ++i) wk[size_t(i)] += f16_to_f32(w.codebooks[(m * K + w.code(o, j, m)) * g + i]);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < g; ++i) s[size_t(t * w.out + o)] += std::abs(wk[size_t(i)] * scale * x[t * ldx + j * g + i]);
    }
  }
  return s;
}

// fp32 summation of `adds` terms: |error| <= adds * 2^-24 * sum|terms| (first-order bound),
// with adds = every product plus every table read of an output. A wrong code or group
// shifts an output by ~|x_k W_k|, orders of magnitude more.
inline double fp32_sum_bound(const AqlmView& w, double abs_sum) {
  const double adds = double(w.in) + double(w.groups() * w.num_codebooks) + 8.0;
  return adds * std::ldexp(1.0, -24) * abs_sum + 1e-30;
}

}  // namespace aqlm::test
