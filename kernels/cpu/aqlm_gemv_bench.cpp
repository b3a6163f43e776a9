// AQLM gemv (every CPU kernel) against the dense F32/F16 gemv of the same shape
// (kernels/cpu/matmul.h), on 1 or more threads of an aqlm::ThreadPool. Counters:
// weight_GB/s over the bytes the kernel streams (codes for AQLM, the matrix for dense) and
// the equivalent dense GFLOP/s (2*rows*cols*tokens).
// "cold": the call rotates over copies of the weights totalling > 96 MB (3x this machine's
// L3), as in a real decode step, where a layer's weights were evicted since the last token;
// otherwise the one copy stays in the caches between calls.
// Shapes: SmolLM2-135M projections (576 / 1536) and Llama-2-7B ones (4096 x 4096, 11008 x 4096).
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "core/common/half.h"
#include "core/common/thread_pool.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cpu/aqlm_test_data.h"
#include "kernels/cpu/matmul.h"

namespace aqlm::cpu {
namespace {

constexpr double kColdBytes = 96e6;

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

ThreadPool* pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  if (threads <= 1) return nullptr;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return p.get();
}

ParallelFor parallel_of(int threads) {
  ThreadPool* pool = pool_of(threads);
  if (!pool) return {};
  return [pool](size_t n, const RangeFn& fn, size_t min_chunk) { pool->parallel_for(n, fn, min_chunk); };
}

size_t copies_for(double bytes, bool cold) { return cold ? size_t(kColdBytes / bytes) + 1 : 1; }

// Args: rows, cols, tokens, M, B, kernel (AqlmKernel), threads, cold.
void BM_AqlmGemv(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const int M = int(state.range(3)), B = int(state.range(4));
  const auto kernel = AqlmKernel(state.range(5));
  const int threads = int(state.range(6));
  if (!aqlm_kernel_supported(kernel) || (kernel != AqlmKernel::Direct && B > 8)) {
    state.SkipWithError("kernel not available for this layer or CPU");
    return;
  }
  const test::AqlmLayer first = test::random_layer(rows, cols, M, B, 8, 1);
  const size_t copies = copies_for(double(first.view().codes_size_bytes()), state.range(7) != 0);
  std::vector<test::AqlmLayer> layers(copies, first);
  std::vector<std::unique_ptr<AqlmCpuLayer>> prepared;
  for (size_t i = 0; i < copies; ++i) {
    if (i > 0) layers[i] = test::random_layer(rows, cols, M, B, 8, i + 1);
    prepared.push_back(std::make_unique<AqlmCpuLayer>(layers[i].view(), kernel));
  }
  const auto x = random_x(n * cols, 2);
  const ParallelFor parallel = parallel_of(threads);
  std::vector<float> y(size_t(n * rows)), tables(prepared[0]->table_floats(n) + 1);
  size_t i = 0;
  for (auto _ : state) {
    aqlm_gemv(*prepared[i++ % copies], x.data(), n, cols, y.data(), rows, tables.data(), parallel);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(aqlm_kernel_name(prepared[0]->kernel()));
  counters(state, rows, cols, n, double(first.view().codes_size_bytes()));
}

// Args: rows, cols, tokens, threads, cold.
void BM_DenseGemv(benchmark::State& state, WeightType type) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const int threads = int(state.range(3));
  const double bytes = double(rows * cols) * (type == WeightType::F32 ? 4 : 2);
  const size_t copies = copies_for(bytes, state.range(4) != 0);
  const auto values = random_x(rows * cols, 3);
  std::vector<std::vector<uint16_t>> half(type == WeightType::F32 ? 0 : copies);
  std::vector<std::vector<float>> full(type == WeightType::F32 ? copies : 0);
  std::vector<DenseMatrix> matrices;
  for (size_t c = 0; c < copies; ++c) {
    if (type == WeightType::F32) {
      full[c] = values;
      matrices.push_back({type, full[c].data(), rows, cols});
    } else {
      half[c].resize(values.size());
      for (size_t k = 0; k < values.size(); ++k) half[c][k] = f32_to_f16(values[k]);
      matrices.push_back({type, half[c].data(), rows, cols});
    }
  }
  const auto x = random_x(n * cols, 2);
  ThreadPool* pool = pool_of(threads);
  std::vector<float> y(size_t(n * rows));
  std::vector<std::vector<float>> scratch(size_t(std::max(1, threads)), std::vector<float>(matmul_scratch_floats(matrices[0]) + 1));
  size_t i = 0;
  for (auto _ : state) {
    const DenseMatrix& m = matrices[i++ % copies];
    if (pool) {
      const int64_t blocks = (rows + 15) / 16;  // the runtime's row blocks for small batches
      pool->parallel_for(size_t(blocks), [&](size_t b, size_t e, int t) {
        matmul(m, x.data(), n, cols, y.data(), rows, int64_t(b) * 16, std::min(rows, int64_t(e) * 16),
               scratch[size_t(t)].data());
      });
    } else {
      matmul(m, x.data(), n, cols, y.data(), rows, 0, rows, scratch[0].data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  counters(state, rows, cols, n, bytes);
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

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{576, 576},   {1536, 576},  {576, 1536},
                                                          {4096, 4096}, {11008, 4096}};
const std::vector<std::pair<int, int>> kConfigs = {{2, 8}, {1, 8}, {1, 16}};

void aqlm_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int cold : {0, 1})
      for (auto [rows, cols] : kShapes)
        for (int64_t n : {1, 4, 8})
          for (auto [M, B] : kConfigs)
            for (AqlmKernel k : {AqlmKernel::LutAvx512, AqlmKernel::LutAvx2, AqlmKernel::Direct})
              if ((B > 8) == (k == AqlmKernel::Direct)) b->Args({rows, cols, n, M, B, int64_t(k), threads, cold});
}
void dense_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int cold : {0, 1})
      for (auto [rows, cols] : kShapes)
        for (int64_t n : {1, 4, 8}) b->Args({rows, cols, n, threads, cold});
}

BENCHMARK(BM_AqlmGemv)
    ->Apply(aqlm_args)
    ->ArgNames({"rows", "cols", "tokens", "M", "B", "kernel", "threads", "cold"})
    ->MeasureProcessCPUTime();
BENCHMARK(BM_DenseGemvF32)->Apply(dense_args)->ArgNames({"rows", "cols", "tokens", "threads", "cold"})->MeasureProcessCPUTime();
BENCHMARK(BM_DenseGemvF16)->Apply(dense_args)->ArgNames({"rows", "cols", "tokens", "threads", "cold"})->MeasureProcessCPUTime();
BENCHMARK(BM_AqlmDequantize)
    ->Args({1536, 576, 2, 8})
    ->Args({1536, 576, 1, 16})
    ->Args({4096, 4096, 2, 8})
    ->ArgNames({"rows", "cols", "M", "B"});

}  // namespace
}  // namespace aqlm::cpu
