// AQLM gemv and dequantization on one thread, against the dense F32/F16 matmul of the same
// shape (kernels/cpu/matmul.h). Counters: weight_GB/s over the bytes the kernel streams
// (codes for AQLM, the matrix for dense) and the equivalent dense GFLOP/s (2*rows*cols*tokens).
// Shapes: SmolLM2-135M projections (576 / 1536) and a Llama-2-7B one (4096 x 4096).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cpu/aqlm_test_data.h"
#include "kernels/cpu/matmul.h"

namespace aqlm::cpu {
namespace {

std::vector<float> random_x(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

void counters(benchmark::State& state, int64_t rows, int64_t cols, int64_t n, double bytes) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * double(rows * cols * n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: rows, cols, tokens, M, B.
void BM_AqlmGemv(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const int M = int(state.range(3)), B = int(state.range(4));
  const test::AqlmLayer layer = test::random_layer(rows, cols, M, B, 8, 1);
  const AqlmView w = layer.view();
  const auto x = random_x(n * cols, 2);
  std::vector<float> y(size_t(n * rows)), scratch(aqlm_gemv_scratch_floats(w, n) + 1);
  for (auto _ : state) {
    aqlm_gemv(w, x.data(), n, cols, y.data(), rows, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  counters(state, rows, cols, n, double(w.codes_size_bytes()));
}

void BM_DenseGemv(benchmark::State& state, WeightType type) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const auto values = random_x(rows * cols, 3);
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i) half[i] = f32_to_f16(values[i]);
  const DenseMatrix m{type, type == WeightType::F32 ? static_cast<const void*>(values.data()) : half.data(), rows, cols};
  const auto x = random_x(n * cols, 2);
  std::vector<float> y(size_t(n * rows)), scratch(matmul_scratch_floats(m) + 1);
  for (auto _ : state) {
    matmul(m, x.data(), n, cols, y.data(), rows, 0, rows, scratch.data());
    benchmark::DoNotOptimize(y.data());
  }
  counters(state, rows, cols, n, double(rows * cols) * (type == WeightType::F32 ? 4 : 2));
}
void BM_DenseGemvF32(benchmark::State& s) { BM_DenseGemv(s, WeightType::F32); }
void BM_DenseGemvF16(benchmark::State& s) { BM_DenseGemv(s, WeightType::F16); }

// Args: rows, cols, M, B; fp32 output (the prefill path converts a tile, then GEMMs it).
void BM_AqlmDequantize(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const test::AqlmLayer layer = test::random_layer(rows, cols, int(state.range(2)), int(state.range(3)), 8, 1);
  std::vector<float> out(size_t(rows * cols));
  for (auto _ : state) {
    aqlm_dequantize(layer.view(), 0, rows, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["weights/s"] =
      benchmark::Counter(double(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{576, 576}, {1536, 576}, {576, 1536}, {4096, 4096}};

void aqlm_args(benchmark::internal::Benchmark* b) {
  for (auto [rows, cols] : kShapes)
    for (int64_t n : {1, 4, 8})
      for (auto [M, B] : std::vector<std::pair<int, int>>{{2, 8}, {1, 16}, {1, 8}}) b->Args({rows, cols, n, M, B});
}
void dense_args(benchmark::internal::Benchmark* b) {
  for (auto [rows, cols] : kShapes)
    for (int64_t n : {1, 4, 8}) b->Args({rows, cols, n});
}

BENCHMARK(BM_AqlmGemv)->Apply(aqlm_args)->ArgNames({"rows", "cols", "tokens", "M", "B"});
BENCHMARK(BM_DenseGemvF32)->Apply(dense_args)->ArgNames({"rows", "cols", "tokens"});
BENCHMARK(BM_DenseGemvF16)->Apply(dense_args)->ArgNames({"rows", "cols", "tokens"});
BENCHMARK(BM_AqlmDequantize)
    ->Args({1536, 576, 2, 8})
    ->Args({1536, 576, 1, 16})
    ->Args({4096, 4096, 2, 8})
    ->ArgNames({"rows", "cols", "M", "B"});

}  // namespace
}  // namespace aqlm::cpu
