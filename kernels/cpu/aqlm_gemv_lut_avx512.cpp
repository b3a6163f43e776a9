// LutAvx512: the AQLM lookup-table kernel for CPUs with AVX-512 BW + VBMI (B <= 8).
//
// Per token, the fp32 tables of input-group . codeword dot products are quantised to int16
// with one scale per block of groups (aqlm_table_quantization: the error bound) and stored
// as two byte planes per table (256 low bytes, 256 high bytes). A table's plane is four
// 64-byte registers, so vpermi2b looks up 64 rows' codes in 128 entries at once and a blend
// on the code's top bit picks the half: 7 instructions per 64 lookups where the scalar
// kernel (LutAvx2) needs 64 loads. Codes are stored group-major ([group][codebook][row],
// rows padded to 64), so one 64-byte load brings a codebook's codes of 64 rows; the int16
// sums of a block are flushed to fp32 (times the block's scale) in a fixed order, so
// results do not depend on how rows or table items are split between threads.
//
// Only the functions marked AQLM_AVX512 use AVX-512; they are called only when
// aqlm_kernel_supported(LutAvx512) (the library is built for x86-64-v3).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/aqlm_gemv_kernels.h"

// GCC 12's AVX-512 headers build some results from _mm512_undefined_*(), which its
// -Wmaybe-uninitialized reports inside every caller (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define AQLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))

namespace aqlm::cpu::detail {
namespace {

constexpr int64_t kPlaneBytes = 512;  // one table: 256 low bytes, then 256 high bytes
constexpr int64_t kChunk = 64;        // rows per code vector

// Per token: the blocks' scales (padded to 16 floats), then the planes of every table.
int64_t scale_floats(const AqlmCpuLayer& l) { return (l.blocks() + 15) / 16 * 16; }
int64_t token_floats(const AqlmCpuLayer& l) {
  const AqlmView& w = l.view();
  return scale_floats(l) + w.groups() * w.num_codebooks * kPlaneBytes / int64_t(sizeof(float));
}

// Byte p of the low plane of 64 entries sits at byte pack_index(p) of the two vectors
// _mm512_packs_epi32 makes of the entries' int32 values (it interleaves 128-bit lanes).
struct PackIndex {
  alignas(64) uint8_t lo[64], hi[64];
  PackIndex() {
    for (int e = 0; e < 64; ++e) {
      const int k = e / 16, r = e % 16, word = (r / 4) * 8 + (k % 2) * 4 + r % 4;
      lo[e] = uint8_t((k / 2) * 64 + 2 * word);
      hi[e] = uint8_t(lo[e] + 1);
    }
  }
};
const PackIndex kPackIndex;

// Quantises `count` fp32 tables of 256 entries to q_max / max|entry| (rounding to nearest
// even) and writes their planes; returns the scale.
AQLM_AVX512 float quantize_tables(const float* t, int64_t count, int q_max, uint8_t* planes) {
  __m512 mx = _mm512_setzero_ps();
  for (int64_t i = 0; i < count * 256; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(t + i)));
  const float max_abs = _mm512_reduce_max_ps(mx);
  const __m512 inv = _mm512_set1_ps(max_abs > 0.0f ? float(q_max) / max_abs : 0.0f);
  const __m512i lo_index = _mm512_load_si512(kPackIndex.lo), hi_index = _mm512_load_si512(kPackIndex.hi);
  for (int64_t k = 0; k < count; ++k) {
    for (int64_t c = 0; c < 256; c += 64) {
      const float* src = t + k * 256 + c;
      __m512i q[4];
      for (int u = 0; u < 4; ++u) q[u] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src + 16 * u), inv));
      const __m512i p0 = _mm512_packs_epi32(q[0], q[1]), p1 = _mm512_packs_epi32(q[2], q[3]);  // |q| <= q_max: exact
      _mm512_storeu_si512(planes + k * kPlaneBytes + c, _mm512_permutex2var_epi8(p0, lo_index, p1));
      _mm512_storeu_si512(planes + k * kPlaneBytes + 256 + c, _mm512_permutex2var_epi8(p0, hi_index, p1));
    }
  }
  return max_abs / float(q_max);
}

// Looks up MT (1 or 2) consecutive tables (planes and codes) for `chunks` chunks of 64 rows
// and adds each row's sum to acc32 (64 int32 per chunk, in row order). The two lookups'
// int16 values of a row are interleaved and summed into int32 by madd_epi16, so entries use
// the whole int16 range. HALF: B <= 7, so one permute covers every entry.
template <int MT, bool HALF>
AQLM_AVX512 inline void lookup(const uint8_t* planes, const uint8_t* codes, int64_t codebook_stride, int64_t chunks,
                               int32_t* acc32) {
  constexpr int kRegs = HALF ? 2 : 4;
  __m512i lo[MT][kRegs], hi[MT][kRegs];
  for (int m = 0; m < MT; ++m)
    for (int r = 0; r < kRegs; ++r) {
      lo[m][r] = _mm512_loadu_si512(planes + m * kPlaneBytes + 64 * r);
      hi[m][r] = _mm512_loadu_si512(planes + m * kPlaneBytes + 256 + 64 * r);
    }
  const __m512i ones = _mm512_set1_epi16(1);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    __m512i words[2][2];  // [codebook][first / second int16 vector]
    for (int m = 0; m < MT; ++m) {
      const __m512i c = _mm512_loadu_si512(codes + m * codebook_stride + ch * kChunk);
      __m512i l, h;
      if constexpr (HALF) {
        l = _mm512_permutex2var_epi8(lo[m][0], c, lo[m][1]);
        h = _mm512_permutex2var_epi8(hi[m][0], c, hi[m][1]);
      } else {
        const __mmask64 top = _mm512_movepi8_mask(c);
        l = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(lo[m][0], c, lo[m][1]),
                                   _mm512_permutex2var_epi8(lo[m][2], c, lo[m][3]));
        h = _mm512_mask_blend_epi8(top, _mm512_permutex2var_epi8(hi[m][0], c, hi[m][1]),
                                   _mm512_permutex2var_epi8(hi[m][2], c, hi[m][3]));
      }
      words[m][0] = _mm512_unpacklo_epi8(l, h);
      words[m][1] = _mm512_unpackhi_epi8(l, h);
    }
    if constexpr (MT == 1) words[1][0] = words[1][1] = _mm512_setzero_si512();
    int32_t* acc = acc32 + ch * kChunk;
    for (int v = 0; v < 2; ++v) {
      const __m512i a = _mm512_madd_epi16(_mm512_unpacklo_epi16(words[0][v], words[1][v]), ones);
      const __m512i b = _mm512_madd_epi16(_mm512_unpackhi_epi16(words[0][v], words[1][v]), ones);
      _mm512_storeu_si512(acc + 32 * v, _mm512_add_epi32(_mm512_loadu_si512(acc + 32 * v), a));
      _mm512_storeu_si512(acc + 32 * v + 16, _mm512_add_epi32(_mm512_loadu_si512(acc + 32 * v + 16), b));
    }
  }
}

template <bool HALF>
AQLM_AVX512 void rows_impl(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy,
                           int64_t r0, int64_t r1) {
  const AqlmView& w = layer.view();
  const int64_t G = w.groups(), M = w.num_codebooks, rows_padded = layer.rows_padded();
  const int64_t block_groups = layer.block_groups(), token_stride = token_floats(layer);
  const int64_t tile_chunks = n <= 2 ? 16 : (n <= 4 ? 8 : 4);  // n * tile rows <= 2048
  alignas(64) int32_t acc32[2048];
  alignas(64) float accf[2048];
  const int64_t c0 = r0 / kChunk, c1 = (r1 + kChunk - 1) / kChunk;
  for (int64_t tile = c0; tile < c1; tile += tile_chunks) {
    const int64_t chunks = std::min(tile_chunks, c1 - tile), rows = chunks * kChunk;
    std::fill(accf, accf + n * rows, 0.0f);
    for (int64_t b = 0; b < layer.blocks(); ++b) {
      std::fill(acc32, acc32 + n * rows, 0);
      // The block's lookups q = (group - first group) * M + codebook, in pairs (same scale).
      const int64_t q0 = b * block_groups * M, q1 = std::min(G, (b + 1) * block_groups) * M;
      for (int64_t q = q0; q < q1; q += 2) {
        const uint8_t* codes = layer.codes() + q * rows_padded + tile * kChunk;
        for (int64_t t = 0; t < n; ++t) {
          const uint8_t* planes =
              reinterpret_cast<const uint8_t*>(tables + t * token_stride + scale_floats(layer)) + q * kPlaneBytes;
          if (q + 1 < q1)
            lookup<2, HALF>(planes, codes, rows_padded, chunks, acc32 + t * rows);
          else
            lookup<1, HALF>(planes, codes, rows_padded, chunks, acc32 + t * rows);
        }
      }
      for (int64_t t = 0; t < n; ++t) {  // fp32 += scale * int32 sum: exact while |sum| < 2^24
        const __m512 s = _mm512_set1_ps(tables[t * token_stride + b]);
        for (int64_t i = t * rows; i < (t + 1) * rows; i += 16)
          _mm512_store_ps(accf + i, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(acc32 + i)), s,
                                                    _mm512_load_ps(accf + i)));
      }
    }
    const int64_t o0 = std::max(r0, tile * kChunk), o1 = std::min(r1, tile * kChunk + rows);
    const float* scales = layer.scales_f32();
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = o0; o < o1; ++o) y[t * ldy + o] = accf[t * rows + (o - tile * kChunk)] * scales[o];
  }
}

AQLM_AVX512 void tables_impl(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* tables,
                             int64_t b0, int64_t b1) {
  const AqlmView& w = layer.view();
  const int64_t G = w.groups(), M = w.num_codebooks, block_groups = layer.block_groups();
  const int q_max = aqlm_table_quantization(int(M)).q_max;
  const int64_t token_stride = token_floats(layer);
  thread_local std::vector<float> block;  // one block's fp32 tables
  block.resize(size_t(block_groups * M * 256));
  float* f32 = block.data();
  for (int64_t t = 0; t < n; ++t) {
    float* token = tables + t * token_stride;
    uint8_t* planes = reinterpret_cast<uint8_t*>(token + scale_floats(layer));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t j0 = b * block_groups, j1 = std::min(G, j0 + block_groups);
      for (int64_t j = j0; j < j1; ++j) group_tables_f32(layer, x + t * ldx, j, f32 + (j - j0) * M * 256);
      token[b] = quantize_tables(f32, (j1 - j0) * M, q_max, planes + j0 * M * kPlaneBytes);
    }
  }
}

}  // namespace

size_t lut_avx512_table_floats(const AqlmCpuLayer& layer, int64_t n) { return size_t(n * token_floats(layer)); }

void lut_avx512_tables(const AqlmCpuLayer& layer, const float* x, int64_t n, int64_t ldx, float* tables, int64_t b0,
                       int64_t b1) {
  tables_impl(layer, x, n, ldx, tables, b0, b1);
}

void lut_avx512_rows(const AqlmCpuLayer& layer, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  if (layer.view().nbits <= 7)
    rows_impl<true>(layer, n, tables, y, ldy, r0, r1);
  else
    rows_impl<false>(layer, n, tables, y, ldy, r0, r1);
}

}  // namespace aqlm::cpu::detail
