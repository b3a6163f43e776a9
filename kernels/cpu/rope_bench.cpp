#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/kernel_test_util.h"
#include "kernels/cpu/rope.h"

namespace aqlm::cpu {
namespace {

void BM_Rope(benchmark::State& state) {
  const int64_t heads = state.range(0), hd = state.range(1);
  auto x = test::random_floats(size_t(heads * hd), 1);
  const auto c = test::random_floats(size_t(hd / 2), 2), s = test::random_floats(size_t(hd / 2), 3);
  for (auto _ : state) {
    rope_apply(x.data(), heads, hd, c.data(), s.data());
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["Gelem/s"] = benchmark::Counter(double(heads * hd) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Rope)->ArgNames({"heads", "head_dim"})->Args({9, 64})->Args({32, 128});

}  // namespace
}  // namespace aqlm::cpu
