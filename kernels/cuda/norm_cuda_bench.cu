// RMSNorm (+ residual add) on a 4096-wide stream: one decode token, a 512-token batch.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"
#include "kernels/cuda/norm_cuda.h"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_norm) {
  const int64_t dim = 4096;
  for (int n : {1, 512}) {
    void* x = device_alloc(size_t(n * dim) * 4, "bench");
    void* res = device_alloc(size_t(n * dim) * 2, "bench");
    void* w = device_alloc(size_t(dim) * 4, "bench");
    void* out = device_alloc(size_t(n * dim) * 2, "bench");
    bench::fill_random_half(x, size_t(n * dim) * 2, 1, 0.01f);  // fp32 read as pairs of small halves: finite
    bench::fill_random_half(res, size_t(n * dim), 2, 0.01f);
    bench::fill_random_half(w, size_t(dim) * 2, 3, 0.01f);
    const double us = bench::median_us([&](cudaStream_t s) {
      add_rmsnorm(static_cast<float*>(x), res, static_cast<const float*>(w), out, DType::F16, n, dim, 1e-5f, s);
    }, bench::iterations());
    bench::report(str("add_rmsnorm n=", n, " dim=", dim), us, double(n * dim) * (4 + 4 + 2 + 2) + dim * 4.0);
    for (void* p : {x, res, w, out}) device_free(p);
  }
}

}  // namespace aqlm::cuda
