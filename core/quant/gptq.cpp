#include "core/quant/gptq.h"

#include <Eigen/Dense>
#include <algorithm>
#include <numeric>

#include "core/common/error.h"
#include "core/common/thread_pool.h"

namespace aqlm {

namespace {
using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowTile = 64;
}  // namespace

DenseQuantResult quantize_gptq(const LayerProblem& p, const GptqOptions& o) {
  AQLM_CHECK(o.bits >= 2 && o.bits <= 8, p.name, ": GPTQ with ", o.bits, " bits; 2 to 8 are supported");
  AQLM_CHECK(o.group_size >= 0, p.name, ": GPTQ group size ", o.group_size, " is negative");
  AQLM_CHECK(o.damp >= 0, p.name, ": GPTQ dampening ", o.damp, " is negative");
  AQLM_CHECK(o.block_size >= 1, p.name, ": GPTQ block size ", o.block_size, " must be positive");
  p.validate();
  const int64_t out = p.out_features, in = p.in_features;

  Eigen::Map<const RowMatrixD> xtx(p.xtx.data(), in, in);
  RowMatrixD h = xtx;
  std::vector<char> dead(static_cast<size_t>(in), 0);
  for (int64_t i = 0; i < in; ++i)
    if (h(i, i) == 0) {
      dead[size_t(i)] = 1;
      h(i, i) = 1;
    }
  // Processing order: natural, or descending diagonal (stable, so ties keep their order).
  std::vector<int64_t> perm(static_cast<size_t>(in));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h(a, a) > h(b, b); });
  RowMatrixD hp(in, in);
  for (int64_t r = 0; r < in; ++r)
    for (int64_t c = 0; c < in; ++c) hp(r, c) = h(perm[size_t(r)], perm[size_t(c)]);
  hp.diagonal().array() += o.damp * hp.diagonal().mean();

  Eigen::LLT<RowMatrixD> llt(hp);
  AQLM_CHECK(llt.info() == Eigen::Success, p.name, ": XTX + ", o.damp,
             " * mean(diag) * I is not positive definite; raise the GPTQ dampening");
  const RowMatrixD hinv = llt.solve(RowMatrixD::Identity(in, in));
  Eigen::LLT<RowMatrixD> llt_inv(hinv);
  AQLM_CHECK(llt_inv.info() == Eigen::Success, p.name,
             ": the inverse of the dampened XTX is not positive definite; raise the GPTQ dampening");
  const RowMatrixD u = llt_inv.matrixU();  // hinv = u^T u

  const int64_t gs = o.group_size;
  const int64_t block = gs > 0 ? gs * std::max<int64_t>(1, o.block_size / gs) : o.block_size;

  DenseQuantResult result;
  result.weight.resize(p.weight.size());
  const int64_t tiles = (out + kRowTile - 1) / kRowTile;
  ThreadPool::global().parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t r0 = int64_t(t) * kRowTile, rows = std::min(kRowTile, out - r0);
      RowMatrixD w(rows, in), q(rows, in);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c)
          w(r, c) = dead[size_t(perm[size_t(c)])] ? 0.0 : double(p.weight[size_t((r0 + r) * in + perm[size_t(c)])]);
      std::vector<UniformGrid<double>> grid(static_cast<size_t>(rows));
      if (gs == 0)
        for (int64_t r = 0; r < rows; ++r) grid[size_t(r)] = UniformGrid<double>::fit(&w(r, 0), in, 1, o.bits);
      for (int64_t i1 = 0; i1 < in; i1 += block) {
        const int64_t i2 = std::min(in, i1 + block), count = i2 - i1;
        RowMatrixD err(rows, count);
        for (int64_t i = i1; i < i2; ++i) {
          if (gs > 0 && i % gs == 0) {
            const int64_t n = std::min(gs, in - i);
            for (int64_t r = 0; r < rows; ++r) grid[size_t(r)] = UniformGrid<double>::fit(&w(r, i), n, 1, o.bits);
          }
          const double d = u(i, i);
          for (int64_t r = 0; r < rows; ++r) {
            const double qv = grid[size_t(r)].quantize(w(r, i));
            q(r, i) = qv;
            const double e = (w(r, i) - qv) / d;
            err(r, i - i1) = e;
            for (int64_t c = i + 1; c < i2; ++c) w(r, c) -= e * u(i, c);
          }
        }
        if (i2 < in) w.rightCols(in - i2).noalias() -= err * u.block(i1, i2, count, in - i2);
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c) result.weight[size_t((r0 + r) * in + perm[size_t(c)])] = float(q(r, c));
    }
  });
  result.bits_per_parameter = uniform_bits_per_parameter(out, in, o.bits, gs, o.act_order && gs > 0);
  return result;
}

}  // namespace aqlm
