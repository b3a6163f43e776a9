// cuBLAS fp16 projections on Llama-2-7B shapes: decode (1 token; weights rotated over > 3x
// the L2 so each call reads them from memory) and a 512-token prefill (TFLOP/s).
#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/dense_gemm_cuda.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_dense_gemm) {
  Blas blas(nullptr);
  struct Shape {
    int64_t out, in;
  };
  for (const Shape sh : {Shape{4096, 4096}, Shape{12288, 4096}, Shape{22016, 4096}, Shape{4096, 11008}, Shape{32000, 4096}}) {
    const size_t wbytes = size_t(sh.out * sh.in) * 2;
    const int copies = int(std::max<size_t>(2, (size_t(220) << 20) / wbytes + 1));
    std::vector<void*> w(static_cast<size_t>(copies));
    for (int i = 0; i < copies; ++i) {
      w[size_t(i)] = device_alloc(wbytes, "bench");
      bench::fill_random_half(w[size_t(i)], wbytes / 2, 20 + i, 0.02f);
    }
    const int n_max = 512;
    void* x = device_alloc(size_t(n_max * sh.in) * 2, "bench");
    void* y = device_alloc(size_t(n_max * sh.out) * 4, "bench");
    bench::fill_random_half(x, size_t(n_max * sh.in), 12);
    for (int n : {1, 512}) {
      int next = 0;
      const double us = bench::median_us([&](cudaStream_t) {
        blas.linear(w[size_t(next)], sh.out, sh.in, x, sh.in, n, y, sh.out, DType::F16);
        next = (next + 1) % copies;
      }, n == 1 ? bench::iterations() : 50, 5);
      bench::report(str("cublas fp16 ", sh.out, "x", sh.in, " n=", n), us, double(wbytes), 2.0 * n * sh.out * sh.in,
                    n == 1 ? str(copies, " rotated copies") : "");
    }
    for (void* p : w) device_free(p);
    device_free(x);
    device_free(y);
  }
}

}  // namespace aqlm::cuda
