// LutAvx2: the AQLM lookup-table kernel for any x86-64-v3 CPU (B <= 8).
// Tables [group][codebook][entry][P] in fp32 (P = tokens padded to 1, 4 or 8, so one load
// serves every token); a row costs one table read per code instead of g multiply-adds per
// token. Groups are swept in blocks of block_groups (16 codes per row for M = 2, 16 KB of
// one-token tables) so the tables in use stay in L1; each row's codes of a block are
// contiguous (layout in aqlm_gemv_kernels.h). Measured: docs/benchmarks.md.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/aqlm_gemv_kernels.h"
#include "kernels/cpu/vec_math.h"

namespace aqlm::cpu::detail {
namespace {

int64_t padded_tokens(int64_t n) { return n == 1 ? 1 : (n <= 4 ? 4 : 8); }

// P floats of every token: a scalar, an SSE or an AVX vector.
template <int P>
struct TokenVec;
template <>
struct TokenVec<1> {
  using V = float;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static V add(V a, V b) { return a + b; }
  static void accumulate(float* p, V v) { *p += v; }
};
template <>
struct TokenVec<4> {
  using V = __m128;
  static V zero() { return _mm_setzero_ps(); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static V add(V a, V b) { return _mm_add_ps(a, b); }
  static void accumulate(float* p, V v) { _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), v)); }
};
template <>
struct TokenVec<8> {
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void accumulate(float* p, V v) { _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v)); }
};

// One row of one block: `lookups` codes (group-major, codebook fastest) into acc[P]. The
// tables of code q sit at tables + q * entries * P. Eight codes come in one 64-bit load; two
// partial sums keep two add chains in flight.
template <int P>
inline void row_block(const uint8_t* codes, const float* tables, int64_t lookups, int64_t entries, float* acc) {
  using TV = TokenVec<P>;
  const int64_t stride = entries * P;
  typename TV::V s0 = TV::zero(), s1 = TV::zero();
  int64_t q = 0;
  for (; q + 8 <= lookups; q += 8) {
    uint64_t v;
    std::memcpy(&v, codes + q, 8);
    const float* t = tables + q * stride;
    s0 = TV::add(s0, TV::load(t + int64_t(v & 255) * P));
    s1 = TV::add(s1, TV::load(t + stride + int64_t((v >> 8) & 255) * P));
    s0 = TV::add(s0, TV::load(t + 2 * stride + int64_t((v >> 16) & 255) * P));
    s1 = TV::add(s1, TV::load(t + 3 * stride + int64_t((v >> 24) & 255) * P));
    s0 = TV::add(s0, TV::load(t + 4 * stride + int64_t((v >> 32) & 255) * P));
    s1 = TV::add(s1, TV::load(t + 5 * stride + int64_t((v >> 40) & 255) * P));
    s0 = TV::add(s0, TV::load(t + 6 * stride + int64_t((v >> 48) & 255) * P));
    s1 = TV::add(s1, TV::load(t + 7 * stride + int64_t(v >> 56) * P));
  }
  for (; q < lookups; ++q) s0 = TV::add(s0, TV::load(tables + q * stride + int64_t(codes[q]) * P));
  TV::accumulate(acc, TV::add(s0, s1));
}

template <int P>
void rows_p(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const AqlmView& w = layer.view();
  const int64_t G = w.groups(), M = w.num_codebooks, E = table_entries(AqlmKernel::LutAvx2, w.nbits);
  const int64_t block_groups = layer.block_groups();
  thread_local std::vector<float> acc;
  acc.assign(size_t((r1 - r0) * P), 0.0f);
  for (int64_t b = 0; b < layer.blocks(); ++b) {
    const int64_t j0 = b * block_groups, lookups = (std::min(G, j0 + block_groups) - j0) * M;
    const uint8_t* codes = layer.codes() + lut_code_offset_avx2(w, block_groups, b);
    const float* tb = tables + j0 * M * E * P;
    for (int64_t o = r0; o < r1; ++o) row_block<P>(codes + o * lookups, tb, lookups, E, acc.data() + (o - r0) * P);
  }
  const float* scales = layer.scales_f32();
  for (int64_t o = r0; o < r1; ++o)
    for (int64_t t = 0; t < n; ++t) y[t * ldy + o] = acc[size_t((o - r0) * P + t)] * scales[o];
}

}  // namespace

size_t lut_avx2_table_floats(const AqlmCpuLayer& layer, int64_t n) {
  const AqlmView& w = layer.view();
  return size_t(padded_tokens(n) * w.groups() * w.num_codebooks * table_entries(AqlmKernel::LutAvx2, w.nbits));
}

void lut_avx2_tables(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* tables, int64_t b0,
                     int64_t b1) {
  const AqlmView& w = layer.view();
  const int64_t G = w.groups(), M = w.num_codebooks, E = table_entries(AqlmKernel::LutAvx2, w.nbits);
  const int64_t P = padded_tokens(n), j0 = b0 * layer.block_groups(), j1 = std::min(G, b1 * layer.block_groups());
  if (P == 1) {
    for (int64_t j = j0; j < j1; ++j) group_tables_f32(layer, x, j, tables + j * M * E);
    return;
  }
  std::vector<float> one(size_t(M * E));
  for (int64_t j = j0; j < j1; ++j) {
    float* tj = tables + j * M * E * P;
    std::fill(tj, tj + M * E * P, 0.0f);
    for (int64_t t = 0; t < n; ++t) {
      group_tables_f32(layer, x + t * ldx, j, one.data());
      for (int64_t i = 0; i < M * E; ++i) tj[i * P + t] = one[size_t(i)];
    }
  }
}

void lut_avx2_rows(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0,
                   int64_t r1) {
  switch (padded_tokens(n)) {
    case 1: return rows_p<1>(layer, n, tables, y, ldy, r0, r1);
    case 4: return rows_p<4>(layer, n, tables, y, ldy, r0, r1);
    default: return rows_p<8>(layer, n, tables, y, ldy, r0, r1);
  }
}

}  // namespace aqlm::cpu::detail
