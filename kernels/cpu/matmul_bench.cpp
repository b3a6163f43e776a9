// Dense matmul throughput, one thread: GFLOP/s (2 * rows * cols * tokens per call) and
// weight bandwidth. Shapes are SmolLM2-135M's projections (576 hidden, 1536 FFN) and a
// Llama-7B-sized one; tokens 1 (decode) up to 256 (prefill).
#include <benchmark/benchmark.h>

#include <vector>

#include "core/common/half.h"
#include "kernels/cpu/kernel_test_util.h"
#include "kernels/cpu/matmul.h"

namespace aqlm::cpu {
namespace {

void run(benchmark::State& state, WeightType type) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const auto values = test::random_floats(size_t(rows * cols), 1);
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    half[i] = type == WeightType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
  DenseMatrix w{type, type == WeightType::F32 ? static_cast<const void*>(values.data()) : half.data(), rows, cols};
  const auto x = test::random_floats(size_t(n * cols), 2);
  std::vector<float> y(size_t(n * rows)), scratch(matmul_scratch_floats(w) + 1);
  for (auto _ : state) {
    matmul(w, x.data(), n, cols, y.data(), rows, 0, rows, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * double(rows) * double(cols) * double(n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  const double weight_bytes = double(rows * cols) * (type == WeightType::F32 ? 4 : 2);
  state.counters["weight_GB/s"] = benchmark::Counter(weight_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1, 2, 3, 4, 5, 8, 16, 64, 256}) {
    b->Args({576, 576, n});
    b->Args({1536, 576, n});
    b->Args({576, 1536, n});
  }
  b->Args({4096, 4096, 1});
  b->Args({4096, 4096, 64});
  b->Args({49152, 576, 1});
}

void BM_MatmulF32(benchmark::State& s) { run(s, WeightType::F32); }
void BM_MatmulF16(benchmark::State& s) { run(s, WeightType::F16); }
void BM_MatmulBF16(benchmark::State& s) { run(s, WeightType::BF16); }
BENCHMARK(BM_MatmulF32)->Apply(shapes)->ArgNames({"rows", "cols", "tokens"});
BENCHMARK(BM_MatmulF16)->Apply(shapes)->ArgNames({"rows", "cols", "tokens"});
BENCHMARK(BM_MatmulBF16)->Apply(shapes)->ArgNames({"rows", "cols", "tokens"});

}  // namespace
}  // namespace aqlm::cpu
