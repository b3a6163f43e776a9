// Greedy argmax over a Llama-2 (32000) and a Qwen2 (152064) vocabulary.
#include "kernels/cuda/argmax_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_argmax) {
  for (int64_t n : {int64_t(32000), int64_t(152064)}) {
    void* x = device_alloc(size_t(n) * 4, "bench");
    void* out = device_alloc(4, "bench");
    bench::fill_random_half(x, size_t(n) * 2, 9, 0.01f);
    const double us = bench::median_us(
        [&](cudaStream_t s) { argmax(static_cast<const float*>(x), n, static_cast<int32_t*>(out), s); },
        bench::iterations());
    bench::report(str("argmax n=", n), us, double(n) * 4);
    device_free(x);
    device_free(out);
  }
}

}  // namespace aqlm::cuda
