#include "core/quant/xtx_products.h"

#include <Eigen/Dense>
#include <algorithm>
#include <vector>

#include "core/common/thread_pool.h"

namespace aqlm {

namespace {
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Wide enough that Eigen's packing of `a` is amortised over many columns; narrow enough
// that two threads get several tiles each on 4096-wide layers.
constexpr int64_t kColumnTile = 512;
constexpr size_t kDotChunk = 1 << 16;
}  // namespace

void xtx_product(ThreadPool& pool, const float* a, int64_t rows, int64_t n, const float* x, float* out) {
  Eigen::Map<const RowMatrixF> A(a, rows, n), X(x, n, n);
  Eigen::Map<RowMatrixF> Out(out, rows, n);
  const int64_t tiles = (n + kColumnTile - 1) / kColumnTile;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t c0 = int64_t(t) * kColumnTile, w = std::min(kColumnTile, n - c0);
      Out.middleCols(c0, w).noalias() = A * X.middleCols(c0, w);
    }
  });
}

double dot_double(ThreadPool& pool, const float* a, const float* b, size_t n) {
  const size_t chunks = (n + kDotChunk - 1) / kDotChunk;
  std::vector<double> partial(chunks, 0.0);
  pool.parallel_for(chunks, [&](size_t c0, size_t c1, int) {
    for (size_t c = c0; c < c1; ++c) {
      double s = 0;
      for (size_t i = c * kDotChunk, e = std::min(n, i + kDotChunk); i < e; ++i) s += double(a[i]) * double(b[i]);
      partial[c] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

double trace_quadratic_form(ThreadPool& pool, const float* a, int64_t rows, int64_t n, const double* xtx) {
  Eigen::Map<const RowMatrixF> Af(a, rows, n);
  Eigen::Map<const RowMatrixD> X(xtx, n, n);
  const RowMatrixD A = Af.cast<double>();
  const int64_t tiles = (n + kColumnTile - 1) / kColumnTile;
  std::vector<double> partial(static_cast<size_t>(tiles), 0.0);
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t c0 = int64_t(t) * kColumnTile, w = std::min(kColumnTile, n - c0);
      const RowMatrixD AX = A * X.middleCols(c0, w);
      partial[t] = (AX.array() * A.middleCols(c0, w).array()).sum();
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace aqlm
