#include "core/quant/pipeline_xtx.h"

#include <algorithm>

#include <Eigen/Dense>

#include "core/common/error.h"
#include "core/common/thread_pool.h"

namespace aqlm {

namespace {
using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kTile = 64;  // columns of XTX per task
}  // namespace

XtxAccumulator::XtxAccumulator(int64_t features) : n_(features) {
  AQLM_CHECK(features > 0, "XTX: ", features, " features");
  sum_.assign(size_t(n_ * n_), 0.0);
}

void XtxAccumulator::add(ThreadPool& pool, const float* x, int64_t rows, int64_t ld) {
  AQLM_CHECK(rows >= 0 && ld >= n_, "XTX: ", rows, " rows with stride ", ld, " for ", n_, " features");
  if (rows == 0) return;
  RowMajor xd(rows, n_);
  pool.parallel_for(size_t(rows), [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < n_; ++c) xd(int64_t(r), c) = double(x[int64_t(r) * ld + c]);
  });
  Eigen::Map<RowMajor> sum(sum_.data(), n_, n_);
  // Tile t fills the lower part of columns [c0, c0 + w): rows c0..n. Tiles near column 0 hold
  // the most rows, so they are dealt out from both ends (0, T-1, 1, T-2, ...) to even the
  // threads' shares; each tile's arithmetic is the same whoever computes it.
  const int64_t tiles = (n_ + kTile - 1) / kTile;
  std::vector<int64_t> order;
  for (int64_t lo = 0, hi = tiles - 1; lo <= hi; ++lo, --hi) {
    order.push_back(lo);
    if (hi != lo) order.push_back(hi);
  }
  pool.parallel_for(order.size(), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t c0 = order[t] * kTile, w = std::min(kTile, n_ - c0);
      sum.block(c0, c0, n_ - c0, w).noalias() += xd.middleCols(c0, n_ - c0).transpose() * xd.middleCols(c0, w);
    }
  });
  rows_ += rows;
}

void XtxAccumulator::add_gram(const std::vector<double>& gram, int64_t rows) {
  AQLM_CHECK(int64_t(gram.size()) == n_ * n_ && rows >= 0, "XTX: a sum of ", gram.size(), " values over ", rows,
             " rows for ", n_, " features");
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j <= i; ++j) sum_[size_t(i * n_ + j)] += gram[size_t(i * n_ + j)];
  rows_ += rows;
}

std::vector<double> XtxAccumulator::mean() const {
  AQLM_CHECK(rows_ > 0, "XTX: no calibration tokens were added");
  std::vector<double> m(sum_.size());
  const double inv = 1.0 / double(rows_);
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j <= i; ++j) m[size_t(i * n_ + j)] = m[size_t(j * n_ + i)] = sum_[size_t(i * n_ + j)] * inv;
  return m;
}

}  // namespace aqlm
