#include "core/quant/synthetic_layer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/quant_random.h"

namespace aqlm {

namespace {
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kColumnTile = 256;
}  // namespace

LayerProblem make_synthetic_layer(const SyntheticLayerOptions& o) {
  AQLM_CHECK(o.out_features > 0 && o.in_features > 0, "synthetic layer: shape [", o.out_features, ", ",
             o.in_features, "] is empty");
  AQLM_CHECK(o.row_scale_dof >= 1, "synthetic layer: Student-t degrees of freedom ", o.row_scale_dof,
             " must be at least 1");
  AQLM_CHECK(o.outlier_min > 0 && o.outlier_max >= o.outlier_min, "synthetic layer: outlier scales [",
             o.outlier_min, ", ", o.outlier_max, "] are not a positive range");
  const int64_t out = o.out_features, in = o.in_features;
  const int64_t tokens = o.tokens > 0 ? o.tokens : 4 * in;
  const int64_t rank = o.factor_rank > 0 ? std::min(o.factor_rank, in) : std::max<int64_t>(1, in / 8);
  const int64_t outliers = std::min(in, o.outlier_channels > 0 ? o.outlier_channels : std::max<int64_t>(1, in / 32));
  const int dof = int(std::lround(o.row_scale_dof));

  LayerProblem p;
  p.name = str("synthetic ", out, "x", in, " seed ", o.seed);
  p.out_features = out;
  p.in_features = in;

  // Rows: Gaussian directions with Student-t magnitudes (a few rows far larger than the rest).
  QuantRandom weight_rng = QuantRandom::derive(o.seed, 1);
  p.weight.resize(size_t(out * in));
  const double inv_sqrt_in = 1.0 / std::sqrt(double(in));
  for (int64_t r = 0; r < out; ++r) {
    double chi2 = 0;
    for (int k = 0; k < dof; ++k) {
      const double z = weight_rng.normal();
      chi2 += z * z;
    }
    const double t = weight_rng.normal() / std::sqrt(chi2 / dof);
    const double row_scale = 0.25 + std::fabs(t);
    for (int64_t c = 0; c < in; ++c) p.weight[size_t(r * in + c)] = float(row_scale * weight_rng.normal() * inv_sqrt_in);
  }

  // Inputs: shared low-rank factors plus independent noise, then outlier channels scaled up.
  QuantRandom input_rng = QuantRandom::derive(o.seed, 2);
  RowMatrixD factors(in, rank);
  for (int64_t i = 0; i < in * rank; ++i) factors.data()[i] = input_rng.normal() / std::sqrt(double(rank));
  RowMatrixD latent(tokens, rank);
  for (int64_t i = 0; i < tokens * rank; ++i) latent.data()[i] = input_rng.normal();
  RowMatrixD x(tokens, in);
  for (int64_t i = 0; i < tokens * in; ++i) x.data()[i] = input_rng.normal();
  x.noalias() += o.factor_weight * latent * factors.transpose();
  std::vector<int64_t> channels = input_rng.permutation(in);
  for (int64_t k = 0; k < outliers; ++k) {
    const double scale = o.outlier_min + (o.outlier_max - o.outlier_min) * input_rng.uniform();
    x.col(channels[size_t(k)]) *= scale;
  }

  p.xtx.resize(size_t(in * in));
  Eigen::Map<RowMatrixD> xtx(p.xtx.data(), in, in);
  const int64_t tiles = (in + kColumnTile - 1) / kColumnTile;
  ThreadPool::global().parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t c0 = int64_t(t) * kColumnTile, w = std::min(kColumnTile, in - c0);
      xtx.middleCols(c0, w).noalias() = x.transpose() * x.middleCols(c0, w) / double(tokens);
    }
  });
  // Exactly symmetric (the tiles round independently).
  for (int64_t r = 0; r < in; ++r)
    for (int64_t c = r + 1; c < in; ++c) xtx(c, r) = xtx(r, c);
  return p;
}

}  // namespace aqlm
