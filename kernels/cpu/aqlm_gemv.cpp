#include "kernels/cpu/aqlm_gemv.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/vec_math.h"

namespace aqlm {

void check_aqlm_view(const AqlmView& w, const std::string& what) {
  AQLM_CHECK(w.codes && w.codebooks && w.scales, what, ": AQLM layer is missing its codes, codebooks or scales");
  AQLM_CHECK(w.out > 0 && w.in > 0, what, ": AQLM layer has an empty shape ", w.out, " x ", w.in);
  AQLM_CHECK(w.num_codebooks >= 1 && w.num_codebooks <= 64, what, ": num_codebooks is ", w.num_codebooks,
             " (expected 1..64)");
  AQLM_CHECK(w.nbits >= 1 && w.nbits <= 16, what, ": nbits_per_codebook is ", w.nbits, " (expected 1..16)");
  AQLM_CHECK(w.group_size >= 1, what, ": in_group_size is ", w.group_size, " (expected >= 1)");
  AQLM_CHECK(w.in % w.group_size == 0, what, ": ", w.in, " input features are not a multiple of in_group_size ",
             w.group_size);
  AQLM_CHECK(w.code_bytes == 1 || w.code_bytes == 2, what, ": codes of ", w.code_bytes,
             " bytes are not supported (expected int8 or int16)");
  AQLM_CHECK(w.nbits <= 8 * w.code_bytes, what, ": ", w.nbits, "-bit codes do not fit the ", 8 * w.code_bytes,
             "-bit integers that hold them");
}

}  // namespace aqlm

namespace aqlm::cpu {
namespace {

void check_cpu() {
  const CpuFeatures& f = cpu_features();
  AQLM_CHECK(f.avx2 && f.fma && f.f16c, "this CPU lacks AVX2/FMA/F16C, which the AQLM CPU kernels need");
}

void check_rows(const AqlmView& w, int64_t n, int64_t ldx, int64_t ldy, int64_t row_begin, int64_t row_end) {
  AQLM_CHECK(n >= 1, "AQLM gemv: token count is ", n, " (expected at least 1)");
  AQLM_CHECK(ldx >= w.in && ldy >= 1, "AQLM gemv: row strides ", ldx, "/", ldy, " are too small for ", w.in,
             " inputs");
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM gemv: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
}

// ---------------------------------------------------------------------------------------
// Lookup-table kernel (B <= 8). Tables [j][m][c][t] = x[t, j*g : j*g+g] . codebook[m][c],
// tokens innermost and padded to P = 1, 4 or 8, so one vector load serves every token; each
// output row then needs M table reads per input group instead of g FMAs per token.

int64_t padded_tokens(int64_t n) { return n == 1 ? 1 : (n <= 4 ? 4 : 8); }

// The codebooks as fp32 in their own layout [m][c][i].
std::vector<float> codebooks_f32(const AqlmView& w) {
  const size_t count = size_t(w.num_codebooks) * size_t(w.codebook_size()) * size_t(w.group_size);
  std::vector<float> out(count);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out.data() + i, simd::load8_f16(w.codebooks + i));
  for (; i < count; ++i) out[i] = f16_to_f32(w.codebooks[i]);
  return out;
}

// One token (P = 1): eight codewords at a time from the codebook transposed to [i][c],
// with x broadcast.
void build_tables_one_token(const AqlmView& w, const float* x, float* tables, int64_t j0, int64_t j1) {
  const int64_t K = w.codebook_size(), g = w.group_size, M = w.num_codebooks;
  const std::vector<float> cb = codebooks_f32(w);
  std::vector<float> cbt(size_t(M * g * K));  // [m][i][c]
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < K; ++c)
      for (int64_t i = 0; i < g; ++i) cbt[size_t((m * g + i) * K + c)] = cb[size_t((m * K + c) * g + i)];
  for (int64_t j = j0; j < j1; ++j) {
    const float* xg = x + j * g;
    for (int64_t m = 0; m < M; ++m) {
      float* table = tables + (j * M + m) * K;
      const float* cbm = cbt.data() + m * g * K;
      int64_t c = 0;
      for (; c + 16 <= K; c += 16) {  // two independent FMA chains
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int64_t i = 0; i < g; ++i) {
          const __m256 xi = _mm256_set1_ps(xg[i]);
          a0 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(cbm + i * K + c), a0);
          a1 = _mm256_fmadd_ps(xi, _mm256_loadu_ps(cbm + i * K + c + 8), a1);
        }
        _mm256_storeu_ps(table + c, a0);
        _mm256_storeu_ps(table + c + 8, a1);
      }
      for (; c < K; ++c) {
        float s = 0.0f;
        for (int64_t i = 0; i < g; ++i) s += xg[i] * cbm[i * K + c];
        table[c] = s;
      }
    }
  }
}

// P = 4 or 8 tokens: all tokens of one entry at a time, from x transposed to [i][t]
// (zero beyond n) and the codeword's values broadcast.
template <int P>
void build_tables_tokens(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* tables, int64_t j0,
                         int64_t j1) {
  using Vec = std::conditional_t<P == 8, __m256, __m128>;
  auto load = [](const float* p) {
    if constexpr (P == 8) return _mm256_loadu_ps(p); else return _mm_loadu_ps(p);
  };
  auto fma = [](float a, Vec b, Vec c) {
    if constexpr (P == 8) return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c); else return _mm_fmadd_ps(_mm_set1_ps(a), b, c);
  };
  auto store = [](float* p, Vec v) {
    if constexpr (P == 8) _mm256_storeu_ps(p, v); else _mm_storeu_ps(p, v);
  };
  auto zero = [] {
    if constexpr (P == 8) return _mm256_setzero_ps(); else return _mm_setzero_ps();
  };
  const int64_t K = w.codebook_size(), g = w.group_size, M = w.num_codebooks;
  const std::vector<float> cb = codebooks_f32(w);
  std::vector<float> xt(size_t(g * P));
  for (int64_t j = j0; j < j1; ++j) {
    std::fill(xt.begin(), xt.end(), 0.0f);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < g; ++i) xt[size_t(i * P + t)] = x[t * ldx + j * g + i];
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t c = 0; c < K; ++c) {
        const float* cw = cb.data() + (m * K + c) * g;
        Vec acc = zero();
        for (int64_t i = 0; i < g; ++i) acc = fma(cw[i], load(xt.data() + i * P), acc);
        store(tables + ((j * M + m) * K + c) * P, acc);
      }
    }
  }
}

void build_tables(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* tables, int64_t j0, int64_t j1) {
  switch (padded_tokens(n)) {
    case 1: return build_tables_one_token(w, x, tables, j0, j1);
    case 4: return build_tables_tokens<4>(w, x, n, ldx, tables, j0, j1);
    default: return build_tables_tokens<8>(w, x, n, ldx, tables, j0, j1);
  }
}

// P floats of every token: a scalar, an SSE or an AVX vector.
template <int P>
struct TokenVec;
template <>
struct TokenVec<1> {
  using V = float;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static void accumulate(float* p, V v) { *p += v; }
};
template <>
struct TokenVec<4> {
  using V = __m128;
  static V zero() { return _mm_setzero_ps(); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void accumulate(float* p, V v) { _mm_storeu_ps(p, _mm_add_ps(_mm_loadu_ps(p), v)); }
};
template <>
struct TokenVec<8> {
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void accumulate(float* p, V v) { _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v)); }
};
inline float operator_add(float a, float b) { return a + b; }
inline __m128 operator_add(__m128 a, __m128 b) { return _mm_add_ps(a, b); }
inline __m256 operator_add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }

// Groups [j0, j1) of one row into acc[P]. Two partial sums keep two add chains in flight.
template <typename CodeT, int M, int P>
void lut_row_block(const CodeT* codes, const float* tables, int64_t j0, int64_t j1, int64_t K, int m_any,
                   uint32_t mask, float* acc) {
  using TV = TokenVec<P>;
  const int Mr = M > 0 ? M : m_any;
  const int64_t stride = Mr * K * P;
  typename TV::V a0 = TV::zero(), a1 = TV::zero();
  int64_t j = j0;
  auto group = [&](int64_t jj) {
    const CodeT* cj = codes + jj * Mr;
    const float* tj = tables + jj * stride;
    typename TV::V s = TV::load(tj + (cj[0] & mask) * P);
    for (int m = 1; m < Mr; ++m) s = operator_add(s, TV::load(tj + (m * K + (cj[m] & mask)) * P));
    return s;
  };
  for (; j + 2 <= j1; j += 2) {
    a0 = operator_add(a0, group(j));
    a1 = operator_add(a1, group(j + 1));
  }
  if (j < j1) a0 = operator_add(a0, group(j));
  TV::accumulate(acc, operator_add(a0, a1));
}

// Rows [r0, r1). With several tokens the tables are swept in blocks of groups (kBlockBytes of
// tables each) that every row passes over before the next block; per-row sums wait in `acc`.
// One token reads each row's codes in one pass: its tables (1 MiB for 4096 inputs, 2x8) are
// read from L2. Measured on bench_kernels_cpu 4096 x 4096 2x8 (CPU time, a loaded 2-core
// machine): 1 token 3.8 ms unblocked, 5.6 ms in 256 KB blocks, 11 ms in 64 KB blocks (the
// codes then come in short strided pieces); 8 tokens 21 ms unblocked, 9.6 ms in 64 KB blocks.
template <typename CodeT, int M, int P>
void lut_rows_blocked(const AqlmView& w, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0,
                      int64_t r1) {
  const int64_t K = w.codebook_size(), groups = w.groups();
  const int Mr = w.num_codebooks;
  const uint32_t mask = w.code_mask();
  const CodeT* codes = static_cast<const CodeT*>(w.codes);
  constexpr int64_t kBlockBytes = int64_t(64) << 10 << 10;
  const int64_t block =
      P == 1 ? groups : std::max<int64_t>(1, kBlockBytes / (Mr * K * P * int64_t(sizeof(float))));
  thread_local std::vector<float> acc;
  acc.assign(size_t((r1 - r0) * P), 0.0f);
  for (int64_t j0 = 0; j0 < groups; j0 += block) {
    const int64_t j1 = std::min(groups, j0 + block);
    for (int64_t o = r0; o < r1; ++o)
      lut_row_block<CodeT, M, P>(codes + o * groups * Mr, tables, j0, j1, K, Mr, mask, acc.data() + (o - r0) * P);
  }
  for (int64_t o = r0; o < r1; ++o) {
    const float scale = f16_to_f32(w.scales[o]);
    for (int64_t t = 0; t < n; ++t) y[t * ldy + o] = acc[size_t((o - r0) * P + t)] * scale;
  }
}

template <typename CodeT, int P>
void lut_rows_p(const AqlmView& w, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  switch (w.num_codebooks) {
    case 1: return lut_rows_blocked<CodeT, 1, P>(w, n, tables, y, ldy, r0, r1);
    case 2: return lut_rows_blocked<CodeT, 2, P>(w, n, tables, y, ldy, r0, r1);
    default: return lut_rows_blocked<CodeT, 0, P>(w, n, tables, y, ldy, r0, r1);  // any M
  }
}

template <typename CodeT>
void lut_rows(const AqlmView& w, int64_t n, const float* tables, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  switch (padded_tokens(n)) {
    case 1: return lut_rows_p<CodeT, 1>(w, n, tables, y, ldy, r0, r1);
    case 4: return lut_rows_p<CodeT, 4>(w, n, tables, y, ldy, r0, r1);
    default: return lut_rows_p<CodeT, 8>(w, n, tables, y, ldy, r0, r1);
  }
}

// ---------------------------------------------------------------------------------------
// Direct kernel (any B; the fast path for B > 8, where tables would be larger than the
// work): decode each group's codeword sum once and use it for every token.

template <typename CodeT, int T>
void direct_rows_g8(const AqlmView& w, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  constexpr int kAcc = T == 1 ? 4 : (T == 2 ? 2 : 1);  // independent FMA chains per token
  const int64_t groups = w.groups(), K = w.codebook_size();
  const int M = w.num_codebooks;
  const uint32_t mask = w.code_mask();
  const CodeT* codes = static_cast<const CodeT*>(w.codes);
  for (int64_t o = r0; o < r1; ++o) {
    const CodeT* row = codes + o * groups * M;
    __m256 acc[T][kAcc];
    for (int t = 0; t < T; ++t)
      for (int a = 0; a < kAcc; ++a) acc[t][a] = _mm256_setzero_ps();
    int64_t j = 0;
    auto step = [&](int64_t jj, int a) {
      const CodeT* cj = row + jj * M;
      __m256 wv = simd::load8_f16(w.codebooks + (cj[0] & mask) * 8);
      for (int m = 1; m < M; ++m) wv = _mm256_add_ps(wv, simd::load8_f16(w.codebooks + (m * K + (cj[m] & mask)) * 8));
      for (int t = 0; t < T; ++t) acc[t][a] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + t * ldx + jj * 8), acc[t][a]);
    };
    for (; j + kAcc <= groups; j += kAcc)
      for (int a = 0; a < kAcc; ++a) step(j + a, a);
    for (; j < groups; ++j) step(j, 0);
    const float scale = f16_to_f32(w.scales[o]);
    for (int t = 0; t < T; ++t) {
      __m256 s = acc[t][0];
      for (int a = 1; a < kAcc; ++a) s = _mm256_add_ps(s, acc[t][a]);
      y[t * ldy + o] = simd::hsum(s) * scale;
    }
  }
}

// Any group size: the codeword sum of a group is decoded into a small buffer.
template <typename CodeT>
void direct_rows_any(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                     int64_t r1) {
  const int64_t groups = w.groups(), K = w.codebook_size(), g = w.group_size;
  const int M = w.num_codebooks;
  const uint32_t mask = w.code_mask();
  const CodeT* codes = static_cast<const CodeT*>(w.codes);
  std::vector<float> wg(static_cast<size_t>(g), 0.0f);
  std::vector<float> acc(static_cast<size_t>(n));
  for (int64_t o = r0; o < r1; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < groups; ++j) {
      const CodeT* cj = codes + (o * groups + j) * M;
      std::fill(wg.begin(), wg.end(), 0.0f);
      for (int m = 0; m < M; ++m) {
        const uint16_t* cw = w.codebooks + (m * K + (cj[m] & mask)) * g;
        for (int64_t i = 0; i < g; ++i) wg[size_t(i)] += f16_to_f32(cw[i]);
      }
      for (int64_t t = 0; t < n; ++t) {
        const float* xg = x + t * ldx + j * g;
        float s = 0.0f;
        for (int64_t i = 0; i < g; ++i) s += wg[size_t(i)] * xg[i];
        acc[size_t(t)] += s;
      }
    }
    const float scale = f16_to_f32(w.scales[o]);
    for (int64_t t = 0; t < n; ++t) y[t * ldy + o] = acc[size_t(t)] * scale;
  }
}

template <typename CodeT>
void direct_rows(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (w.group_size != 8) return direct_rows_any<CodeT>(w, x, n, ldx, y, ldy, r0, r1);
  switch (n) {
    case 1: return direct_rows_g8<CodeT, 1>(w, x, ldx, y, ldy, r0, r1);
    case 2: return direct_rows_g8<CodeT, 2>(w, x, ldx, y, ldy, r0, r1);
    case 3: return direct_rows_g8<CodeT, 3>(w, x, ldx, y, ldy, r0, r1);
    case 4: return direct_rows_g8<CodeT, 4>(w, x, ldx, y, ldy, r0, r1);
    case 5: return direct_rows_g8<CodeT, 5>(w, x, ldx, y, ldy, r0, r1);
    case 6: return direct_rows_g8<CodeT, 6>(w, x, ldx, y, ldy, r0, r1);
    case 7: return direct_rows_g8<CodeT, 7>(w, x, ldx, y, ldy, r0, r1);
    default: return direct_rows_g8<CodeT, 8>(w, x, ldx, y, ldy, r0, r1);
  }
}

// ---------------------------------------------------------------------------------------

template <typename CodeT, typename Store>
void dequantize_rows(const AqlmView& w, int64_t r0, int64_t r1, Store store) {
  const int64_t groups = w.groups(), K = w.codebook_size(), g = w.group_size;
  const int M = w.num_codebooks;
  const uint32_t mask = w.code_mask();
  const CodeT* codes = static_cast<const CodeT*>(w.codes);
  for (int64_t o = r0; o < r1; ++o) {
    const __m256 scale8 = _mm256_set1_ps(f16_to_f32(w.scales[o]));
    const float scale = f16_to_f32(w.scales[o]);
    for (int64_t j = 0; j < groups; ++j) {
      const CodeT* cj = codes + (o * groups + j) * M;
      const int64_t dst = (o - r0) * w.in + j * g;
      if (g == 8) {
        __m256 v = simd::load8_f16(w.codebooks + (cj[0] & mask) * 8);
        for (int m = 1; m < M; ++m) v = _mm256_add_ps(v, simd::load8_f16(w.codebooks + (m * K + (cj[m] & mask)) * 8));
        store.vec8(dst, _mm256_mul_ps(v, scale8));
      } else {
        for (int64_t i = 0; i < g; ++i) {
          float v = 0.0f;
          for (int m = 0; m < M; ++m) v += f16_to_f32(w.codebooks[(m * K + (cj[m] & mask)) * g + i]);
          store.one(dst + i, v * scale);
        }
      }
    }
  }
}

struct StoreF32 {
  float* out;
  void vec8(int64_t i, __m256 v) const { _mm256_storeu_ps(out + i, v); }
  void one(int64_t i, float v) const { out[i] = v; }
};
struct StoreF16 {
  uint16_t* out;
  void vec8(int64_t i, __m256 v) const {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  void one(int64_t i, float v) const { out[i] = f32_to_f16(v); }
};

void run_parallel(const ParallelFor& parallel, size_t n, size_t min_chunk, const RangeFn& fn) {
  if (n == 0) return;
  if (parallel) {
    parallel(n, fn, min_chunk);
  } else {
    fn(0, n, 0);
  }
}

}  // namespace

void aqlm_gemv_reference(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                         int64_t row_begin, int64_t row_end) {
  check_aqlm_view(w, "AQLM gemv");
  check_rows(w, n, ldx, ldy, row_begin, row_end);
  const int64_t groups = w.groups(), K = w.codebook_size(), g = w.group_size;
  std::vector<double> acc(static_cast<size_t>(n));
  std::vector<double> wg(static_cast<size_t>(g));
  for (int64_t o = row_begin; o < row_end; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < groups; ++j) {
      std::fill(wg.begin(), wg.end(), 0.0);
      for (int m = 0; m < w.num_codebooks; ++m) {
        const uint16_t* cw = w.codebooks + (m * K + w.code(o, j, m)) * g;
        for (int64_t i = 0; i < g; ++i) wg[size_t(i)] += double(f16_to_f32(cw[i]));
      }
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < g; ++i) acc[size_t(t)] += wg[size_t(i)] * double(x[t * ldx + j * g + i]);
    }
    const double scale = double(f16_to_f32(w.scales[o]));
    for (int64_t t = 0; t < n; ++t) y[t * ldy + o] = float(acc[size_t(t)] * scale);
  }
}

size_t aqlm_gemv_scratch_floats(const AqlmView& w, int64_t n) {
  if (!aqlm_uses_lut(w)) return 0;
  return size_t(padded_tokens(std::min(n, kAqlmLutTokens)) * w.groups() * w.num_codebooks * w.codebook_size());
}

void aqlm_gemv_prepare(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* scratch, int64_t group_begin,
                       int64_t group_end) {
  if (!aqlm_uses_lut(w)) return;
  check_aqlm_view(w, "AQLM gemv");
  check_cpu();
  AQLM_CHECK(n >= 1 && n <= kAqlmLutTokens, "AQLM gemv: ", n, " tokens in one table pass (expected 1..",
             kAqlmLutTokens, ")");
  AQLM_CHECK(ldx >= w.in, "AQLM gemv: input row stride ", ldx, " is smaller than the ", w.in, " inputs");
  AQLM_CHECK(group_begin >= 0 && group_begin <= group_end && group_end <= w.groups(), "AQLM gemv: groups [",
             group_begin, ", ", group_end, ") are outside the layer's ", w.groups(), " groups");
  build_tables(w, x, n, ldx, scratch, group_begin, group_end);
}

void aqlm_gemv_rows(const AqlmView& w, const float* x, int64_t n, int64_t ldx, const float* scratch, float* y,
                    int64_t ldy, int64_t row_begin, int64_t row_end) {
  check_aqlm_view(w, "AQLM gemv");
  check_cpu();
  check_rows(w, n, ldx, ldy, row_begin, row_end);
  AQLM_CHECK(n <= kAqlmLutTokens, "AQLM gemv: ", n, " tokens in one pass (expected 1..", kAqlmLutTokens, ")");
  if (aqlm_uses_lut(w)) {
    if (w.code_bytes == 1)
      lut_rows<uint8_t>(w, n, scratch, y, ldy, row_begin, row_end);
    else
      lut_rows<uint16_t>(w, n, scratch, y, ldy, row_begin, row_end);
  } else {
    if (w.code_bytes == 1)
      direct_rows<uint8_t>(w, x, n, ldx, y, ldy, row_begin, row_end);
    else
      direct_rows<uint16_t>(w, x, n, ldx, y, ldy, row_begin, row_end);
  }
}

void aqlm_gemv(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, float* scratch,
               const ParallelFor& parallel) {
  check_aqlm_view(w, "AQLM gemv");
  check_rows(w, n, ldx, ldy, 0, w.out);
  for (int64_t t0 = 0; t0 < n; t0 += kAqlmLutTokens) {
    const int64_t nt = std::min(kAqlmLutTokens, n - t0);
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    if (aqlm_uses_lut(w)) {
      run_parallel(parallel, size_t(w.groups()), 16, [&](size_t b, size_t e, int) {
        aqlm_gemv_prepare(w, xt, nt, ldx, scratch, int64_t(b), int64_t(e));
      });
    }
    run_parallel(parallel, size_t(w.out), 16, [&](size_t b, size_t e, int) {
      aqlm_gemv_rows(w, xt, nt, ldx, scratch, yt, ldy, int64_t(b), int64_t(e));
    });
  }
}

void aqlm_dequantize(const AqlmView& w, int64_t row_begin, int64_t row_end, float* out) {
  check_aqlm_view(w, "AQLM dequantize");
  check_cpu();
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM dequantize: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
  if (w.code_bytes == 1)
    dequantize_rows<uint8_t>(w, row_begin, row_end, StoreF32{out});
  else
    dequantize_rows<uint16_t>(w, row_begin, row_end, StoreF32{out});
}

void aqlm_dequantize_f16(const AqlmView& w, int64_t row_begin, int64_t row_end, uint16_t* out) {
  check_aqlm_view(w, "AQLM dequantize");
  check_cpu();
  AQLM_CHECK(row_begin >= 0 && row_begin <= row_end && row_end <= w.out, "AQLM dequantize: rows [", row_begin, ", ",
             row_end, ") are outside the layer's ", w.out, " rows");
  if (w.code_bytes == 1)
    dequantize_rows<uint8_t>(w, row_begin, row_end, StoreF16{out});
  else
    dequantize_rows<uint16_t>(w, row_begin, row_end, StoreF16{out});
}

}  // namespace aqlm::cpu
