#pragma once
// A small harness for the inference-engine kernel benchmarks (bench_engine_kernels_cuda):
// each *_cuda_bench.cu registers cases with AQLM_ENGINE_BENCH; engine_kernels_bench.cu runs
// them (all, or those whose name contains --only TEXT) and prints one table. Timing per
// docs METHOD: CUDA events around each call, warm-up first, the median of many calls.
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

#include "core/common/error.h"  // str(), used by every case for its row name

namespace aqlm::cuda::bench {

using Launch = std::function<void(cudaStream_t)>;

// Median microseconds of `launch` over `iters` timed calls after `warmup` untimed ones.
double median_us(const Launch& launch, int iters = 200, int warmup = 20);
// A table row: time, and the rate over the fewest bytes moved (each input read once, each
// output written once) and/or the arithmetic done.
void report(const std::string& name, double us, double bytes, double flops = 0, const std::string& note = "");
// Device-to-device copy bandwidth (bytes read + written), measured once per run.
double copy_gbps();
// Fills a device buffer with random fp16 values ~ N(0, scale) / random bytes (never zeros).
void fill_random_half(void* p, size_t n, uint64_t seed, float scale = 1.0f);
void fill_random_bytes(void* p, size_t bytes, uint64_t seed);
int iterations();

using Case = std::function<void()>;
std::vector<std::pair<std::string, Case>>& registry();
struct Register {
  Register(const char* name, Case fn) { registry().emplace_back(name, std::move(fn)); }
};

}  // namespace aqlm::cuda::bench

#define AQLM_ENGINE_BENCH(fn)                                                   \
  static void fn();                                                             \
  static const ::aqlm::cuda::bench::Register fn##_registration(#fn, fn);        \
  static void fn()
