#include "core/quant/rtn.h"

#include "core/common/error.h"
#include "core/common/thread_pool.h"

namespace aqlm {

DenseQuantResult quantize_rtn(const LayerProblem& p, const RtnOptions& o) {
  AQLM_CHECK(o.bits >= 2 && o.bits <= 8, p.name, ": RTN with ", o.bits, " bits; 2 to 8 are supported");
  AQLM_CHECK(o.group_size >= 0, p.name, ": RTN group size ", o.group_size, " is negative");
  p.validate();
  const int64_t out = p.out_features, in = p.in_features, gs = o.group_size > 0 ? o.group_size : in;
  DenseQuantResult r;
  r.weight.resize(p.weight.size());
  ThreadPool::global().parallel_for(size_t(out), [&](size_t r0, size_t r1, int) {
    for (size_t row = r0; row < r1; ++row) {
      const float* w = &p.weight[row * size_t(in)];
      float* q = &r.weight[row * size_t(in)];
      for (int64_t c0 = 0; c0 < in; c0 += gs) {
        const int64_t n = std::min(gs, in - c0);
        const UniformGrid<float> grid = UniformGrid<float>::fit(w + c0, n, 1, o.bits);
        for (int64_t c = c0; c < c0 + n; ++c) q[c] = grid.quantize(w[c]);
      }
    }
  });
  r.bits_per_parameter = uniform_bits_per_parameter(out, in, o.bits, o.group_size, false);
  return r;
}

}  // namespace aqlm
