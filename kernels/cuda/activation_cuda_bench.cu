// SwiGLU on the Llama-2-7B MLP width (11008), one token and 512.
#include "kernels/cuda/activation_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_swiglu) {
  const int64_t width = 11008;
  for (int n : {1, 512}) {
    void* in = device_alloc(size_t(n * width) * 4, "bench");
    void* h = device_alloc(size_t(n * width) * 2, "bench");
    bench::fill_random_half(in, size_t(n * width) * 2, 8);
    const double us = bench::median_us(
        [&](cudaStream_t s) { swiglu(in, 2 * width, width, h, n, width, DType::F16, s); }, bench::iterations());
    bench::report(str("swiglu n=", n, " width=", width), us, double(n * width) * 6);
    device_free(in);
    device_free(h);
  }
}

}  // namespace aqlm::cuda
