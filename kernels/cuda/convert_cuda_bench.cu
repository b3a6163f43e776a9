// Weight conversion at upload (fp32 -> fp16, 64M elements) and the embedding lookup.
#include <vector>

#include "kernels/cuda/convert_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_convert) {
  const size_t n = size_t(64) << 20;
  void* src = device_alloc(n * 4, "bench");
  void* dst = device_alloc(n * 2, "bench");
  bench::fill_random_half(src, n * 2, 10, 0.01f);
  const double us = bench::median_us(
      [&](cudaStream_t s) { convert(src, ElementType::F32, dst, ElementType::F16, n, s); }, 50, 3);
  bench::report("convert fp32->fp16 64M", us, double(n) * 6);
  device_free(src);
  device_free(dst);

  const int64_t vocab = 32000, dim = 4096;
  void* table = device_alloc(size_t(vocab * dim) * 2, "bench");
  bench::fill_random_half(table, size_t(vocab * dim), 11);
  for (int tokens : {1, 512}) {
    std::vector<int32_t> ids(static_cast<size_t>(tokens));
    for (int i = 0; i < tokens; ++i) ids[size_t(i)] = int32_t((i * 7919) % vocab);
    void* d_ids = device_alloc(ids.size() * 4, "bench");
    check(cudaMemcpy(d_ids, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice), "upload");
    void* x = device_alloc(size_t(tokens * dim) * 4, "bench");
    const double t = bench::median_us([&](cudaStream_t s) {
      embedding_lookup(table, DType::F16, static_cast<const int32_t*>(d_ids), tokens, dim, static_cast<float*>(x), s);
    }, bench::iterations());
    bench::report(str("embedding_lookup n=", tokens, " dim=", dim), t, double(tokens * dim) * 6);
    device_free(d_ids);
    device_free(x);
  }
  device_free(table);
}

}  // namespace aqlm::cuda
