// Direct AQLM kernel (any B; the fast path for B > 8 such as 1x16, where tables would cost more
// than the product): each group's codeword sum is decoded once from the fp16 codebooks and
// multiplied with every token.
#include <algorithm>
#include <vector>

#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv_kernels.h"
#include "kernels/cpu/vec_math.h"

namespace aqlm::cpu::detail {
namespace {

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
void direct_rows_typed(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
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

}  // namespace

void direct_rows(const AqlmView& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (w.code_bytes == 1)
    direct_rows_typed<uint8_t>(w, x, n, ldx, y, ldy, r0, r1);
  else
    direct_rows_typed<uint16_t>(w, x, n, ldx, y, ldy, r0, r1);
}

}  // namespace aqlm::cpu::detail
