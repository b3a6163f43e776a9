// bench_engine_kernels_cuda: the inference-engine kernels (norm, rope, attention, SwiGLU,
// argmax, conversions, cuBLAS projections) on Llama-2-7B shapes. Cases live in the
// *_cuda_bench.cu files beside this one.
//
// Usage: bench_engine_kernels_cuda [--only TEXT] [--iters N]
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda::bench {
namespace {

int g_iters = 200;
double g_copy_gbps = 0;

__global__ void fill_half_kernel(__half* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;  // splitmix64, then Box-Muller on two halves
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u1 = (float(uint32_t(z)) + 1.0f) * 2.3283064e-10f, u2 = float(uint32_t(z >> 32)) * 2.3283064e-10f;
    p[i] = __float2half(scale * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2));
  }
}

__global__ void fill_bytes_kernel(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    p[i] = uint8_t(z ^ (z >> 31));
  }
}

}  // namespace

int iterations() { return g_iters; }

std::vector<std::pair<std::string, Case>>& registry() {
  static std::vector<std::pair<std::string, Case>> cases;
  return cases;
}

void fill_random_half(void* p, size_t n, uint64_t seed, float scale) {
  fill_half_kernel<<<1024, 256>>>(static_cast<__half*>(p), n, seed, scale);
  check_launch("random fill");
}

void fill_random_bytes(void* p, size_t bytes, uint64_t seed) {
  fill_bytes_kernel<<<1024, 256>>>(static_cast<uint8_t*>(p), bytes, seed);
  check_launch("random fill");
}

double median_us(const Launch& launch, int iters, int warmup) {
  cudaStream_t stream = nullptr;
  for (int i = 0; i < warmup; ++i) launch(stream);
  check(cudaDeviceSynchronize(), "benchmark warm-up");
  std::vector<cudaEvent_t> events(static_cast<size_t>(iters) + 1);
  for (auto& e : events) check(cudaEventCreate(&e), "creating a CUDA event");
  std::vector<float> ms(static_cast<size_t>(iters));
  check(cudaEventRecord(events[0], stream), "recording an event");
  for (int i = 0; i < iters; ++i) {
    launch(stream);
    check(cudaEventRecord(events[size_t(i) + 1], stream), "recording an event");
  }
  check(cudaEventSynchronize(events.back()), "benchmark run");
  for (int i = 0; i < iters; ++i)
    check(cudaEventElapsedTime(&ms[size_t(i)], events[size_t(i)], events[size_t(i) + 1]), "reading an event");
  for (auto& e : events) cudaEventDestroy(e);
  std::nth_element(ms.begin(), ms.begin() + iters / 2, ms.end());
  return double(ms[size_t(iters / 2)]) * 1000.0;
}

double copy_gbps() {
  if (g_copy_gbps > 0) return g_copy_gbps;
  const size_t bytes = size_t(1) << 30;
  void* a = device_alloc(bytes, "the copy benchmark");
  void* b = device_alloc(bytes, "the copy benchmark");
  fill_random_bytes(a, bytes, 1);
  const double us = median_us([&](cudaStream_t s) { check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s), "copy"); },
                              20, 3);
  device_free(a);
  device_free(b);
  g_copy_gbps = 2.0 * double(bytes) / (us * 1e3);
  return g_copy_gbps;
}

void report(const std::string& name, double us, double bytes, double flops, const std::string& note) {
  const double gbps = bytes / (us * 1e3);
  std::printf("%-44s %10.2f us", name.c_str(), us);
  if (bytes > 0) std::printf("  %8.1f GB/s (%4.0f%% of copy)", gbps, 100.0 * gbps / copy_gbps());
  if (flops > 0) std::printf("  %8.2f TFLOP/s", flops / (us * 1e6));
  if (!note.empty()) std::printf("  %s", note.c_str());
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace aqlm::cuda::bench

int main(int argc, char** argv) {
  using namespace aqlm::cuda;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) bench::g_iters = std::max(10, std::atoi(argv[++i]));
  }
  try {
    if (device_count() == 0) {
      std::printf("no GPU: %s\n", no_device_reason().c_str());
      return 0;
    }
    const DeviceProperties& p = device_properties();
    std::printf("%s, %d SMs; device copy %.0f GB/s (read + write); median of %d calls\n", p.name.c_str(), p.sm_count,
                bench::copy_gbps(), bench::g_iters);
    for (const auto& [name, fn] : bench::registry())
      if (only.empty() || name.find(only) != std::string::npos) fn();
  } catch (const aqlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
