#include "kernels/cpu/matmul.h"

#include <Eigen/Core>
#include <algorithm>

#include "core/common/half.h"
#include "kernels/cpu/vec_math.h"

namespace aqlm::cpu {
namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

template <WeightType WT>
struct Weights;

template <>
struct Weights<WeightType::F32> {
  using Elem = float;
  static __m256 load(const Elem* p) { return simd::load8(p); }
  static float scalar(Elem v) { return v; }
};
template <>
struct Weights<WeightType::F16> {
  using Elem = uint16_t;
  static __m256 load(const Elem* p) { return simd::load8_f16(p); }
  static float scalar(Elem v) { return f16_to_f32(v); }
};
template <>
struct Weights<WeightType::BF16> {
  using Elem = uint16_t;
  static __m256 load(const Elem* p) { return simd::load8_bf16(p); }
  static float scalar(Elem v) { return bf16_to_f32(v); }
};

// R weight rows against T tokens, all R*T dot products kept in registers; each weight
// vector is loaded once and used T times.
template <WeightType WT, int R, int T>
void gemv_block(const typename Weights<WT>::Elem* w, int64_t K, const float* x, int64_t ldx, float* y, int64_t ldy) {
  using W = Weights<WT>;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  const int64_t K8 = K & ~int64_t(7);
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * ldx + k);
    for (int r = 0; r < R; ++r) {
      const __m256 wv = W::load(w + r * K + k);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int t = 0; t < T; ++t) {
      float sum = simd::hsum(acc[r][t]);
      for (int64_t k = K8; k < K; ++k) sum += W::scalar(w[r * K + k]) * x[t * ldx + k];
      y[t * ldy + r] = sum;
    }
  }
}

// Tokens [0, n) in groups of T against rows in blocks of R (the block stays in L1/L2
// while the token groups pass over it).
template <WeightType WT, int R, int T>
void gemv_rows(const DenseMatrix& m, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0,
               int64_t r1) {
  using Elem = typename Weights<WT>::Elem;
  const Elem* w = static_cast<const Elem*>(m.data);
  const int64_t K = m.cols;
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    int64_t t = 0;
    for (; t + T <= n; t += T) gemv_block<WT, R, T>(w + r * K, K, x + t * ldx, ldx, y + t * ldy + r, ldy);
    for (; t < n; ++t) gemv_block<WT, R, 1>(w + r * K, K, x + t * ldx, ldx, y + t * ldy + r, ldy);
  }
  for (; r < r1; ++r)
    for (int64_t t = 0; t < n; ++t) gemv_block<WT, 1, 1>(w + r * K, K, x + t * ldx, ldx, y + t * ldy + r, ldy);
}

template <WeightType WT>
void gemv(const DenseMatrix& m, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  // Register blocks chosen so R*T accumulators + T activations + 1 weight vector fit the
  // 16 ymm registers.
  switch (n) {
    case 1: gemv_rows<WT, 8, 1>(m, x, n, ldx, y, ldy, r0, r1); return;
    case 2: gemv_rows<WT, 4, 2>(m, x, n, ldx, y, ldy, r0, r1); return;
    case 3: gemv_rows<WT, 3, 3>(m, x, n, ldx, y, ldy, r0, r1); return;
    default: gemv_rows<WT, 2, 4>(m, x, n, ldx, y, ldy, r0, r1); return;
  }
}

void gemm_tile(const float* w_rows, int64_t rows, int64_t K, const float* x, int64_t n, int64_t ldx, float* y,
               int64_t ldy) {
  Eigen::Map<const RowMajor, 0, Stride> X(x, n, K, Stride(ldx));
  Eigen::Map<const RowMajor> W(w_rows, rows, K);
  Eigen::Map<RowMajor, 0, Stride> Y(y, n, rows, Stride(ldy));
  Y.noalias() = X * W.transpose();
}

}  // namespace

size_t matmul_scratch_floats(const DenseMatrix& w) {
  return w.type == WeightType::F32 ? 0 : size_t(kGemmTileRows * w.cols);
}

void convert_weights(const DenseMatrix& w, int64_t offset, int64_t count, float* out) {
  switch (w.type) {
    case WeightType::F32: std::copy_n(static_cast<const float*>(w.data) + offset, count, out); return;
    case WeightType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + offset;
      int64_t i = 0;
      for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, simd::load8_f16(src + i));
      for (; i < count; ++i) out[i] = f16_to_f32(src[i]);
      return;
    }
    case WeightType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + offset;
      int64_t i = 0;
      for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, simd::load8_bf16(src + i));
      for (; i < count; ++i) out[i] = bf16_to_f32(src[i]);
      return;
    }
  }
}

void matmul(const DenseMatrix& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t row_begin,
            int64_t row_end, float* scratch) {
  if (n <= 0 || row_begin >= row_end) return;
  if (n <= kGemvMaxTokens) {
    switch (w.type) {
      case WeightType::F32: gemv<WeightType::F32>(w, x, n, ldx, y, ldy, row_begin, row_end); return;
      case WeightType::F16: gemv<WeightType::F16>(w, x, n, ldx, y, ldy, row_begin, row_end); return;
      case WeightType::BF16: gemv<WeightType::BF16>(w, x, n, ldx, y, ldy, row_begin, row_end); return;
    }
    return;
  }
  const int64_t K = w.cols;
  if (w.type == WeightType::F32) {
    gemm_tile(static_cast<const float*>(w.data) + row_begin * K, row_end - row_begin, K, x, n, ldx, y + row_begin, ldy);
    return;
  }
  for (int64_t r = row_begin; r < row_end; r += kGemmTileRows) {
    const int64_t rows = std::min(kGemmTileRows, row_end - r);
    convert_weights(w, r * K, rows * K, scratch);
    gemm_tile(scratch, rows, K, x, n, ldx, y + r, ldy);
  }
}

}  // namespace aqlm::cpu
