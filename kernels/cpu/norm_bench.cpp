#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/kernel_test_util.h"
#include "kernels/cpu/norm.h"

namespace aqlm::cpu {
namespace {

void BM_RmsNorm(benchmark::State& state) {
  const int64_t dim = state.range(0);
  const auto x = test::random_floats(size_t(dim), 1), w = test::random_floats(size_t(dim), 2);
  std::vector<float> y(static_cast<size_t>(dim));
  for (auto _ : state) {
    rmsnorm(x.data(), w.data(), y.data(), dim, 1e-5f);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(dim) * 12e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_RmsNorm)->Arg(576)->Arg(4096);

}  // namespace
}  // namespace aqlm::cpu
