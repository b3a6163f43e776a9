#pragma once
// Dense matrix products with fp32 activations and F32 / F16 / BF16 weights read in place:
//   y[t, r] = sum_k x[t, k] * W[r, k]     (W row-major [rows, cols], as PyTorch stores a Linear)
// Single-threaded over a range of output rows: callers split the rows between threads.
#include <cstddef>
#include <cstdint>

namespace aqlm::cpu {

enum class WeightType : uint8_t { F32, F16, BF16 };

// A weight matrix as stored: row-major [rows, cols], elements of `type`.
struct DenseMatrix {
  WeightType type = WeightType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// Up to this many tokens the product streams each weight row once against every token
// (decode, small batches); above it, tiles of rows are converted to fp32 and multiplied
// by an Eigen GEMM. Chosen from bench_kernels_cpu (BM_Matmul*): see docs/benchmarks.md.
constexpr int64_t kGemvMaxTokens = 4;
// Rows converted per GEMM tile for F16/BF16 weights.
constexpr int64_t kGemmTileRows = 64;

// Floats of scratch memory matmul() needs for matrix `w` (a converted tile; 0 for F32).
size_t matmul_scratch_floats(const DenseMatrix& w);

// Computes y[t * ldy + r] for t in [0, n) and r in [row_begin, row_end). x is [n, w.cols]
// with row stride ldx. `scratch` holds matmul_scratch_floats(w) floats (may be null if 0).
void matmul(const DenseMatrix& w, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
            int64_t row_begin, int64_t row_end, float* scratch);

// Converts `count` consecutive elements starting at element `offset` of w to fp32.
void convert_weights(const DenseMatrix& w, int64_t offset, int64_t count, float* out);

}  // namespace aqlm::cpu
