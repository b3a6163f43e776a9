#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

void BM_Swiglu(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto g = test::random_floats(size_t(n), 1, -8, 8), u = test::random_floats(size_t(n), 2);
  std::vector<float> out(static_cast<size_t>(n));
  for (auto _ : state) {
    swiglu(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["Gelem/s"] = benchmark::Counter(double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Swiglu)->Arg(1536)->Arg(11008);

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x0 = test::random_floats(size_t(n), 1, -10, 10);
  std::vector<float> x = x0;
  for (auto _ : state) {
    x = x0;
    softmax(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["Gelem/s"] = benchmark::Counter(double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Softmax)->Arg(512)->Arg(4096);

void BM_LogSumExp(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = test::random_floats(size_t(n), 1, -10, 10);
  for (auto _ : state) benchmark::DoNotOptimize(logsumexp(x.data(), n));
  state.counters["Gelem/s"] = benchmark::Counter(double(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LogSumExp)->Arg(49152);

}  // namespace
}  // namespace aqlm::cpu
