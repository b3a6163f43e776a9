// RoPE + KV store for Llama-2-7B heads (32 x 128): one decode token and a 512-token batch.
#include <cmath>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"
#include "kernels/cuda/rope_cuda.h"

namespace aqlm::cuda {

AQLM_ENGINE_BENCH(bench_rope) {
  const int heads = 32, hd = 128, capacity = 4096;
  const int64_t width = 3 * heads * hd;
  std::vector<float> table(size_t(capacity) * hd / 2);
  for (size_t i = 0; i < table.size(); ++i) table[i] = float(std::cos(double(i)));
  void* tab = device_alloc(table.size() * 4, "bench");
  check(cudaMemcpy(tab, table.data(), table.size() * 4, cudaMemcpyHostToDevice), "upload");
  void* kc = device_alloc(size_t(heads) * capacity * hd * 2, "bench");
  void* vc = device_alloc(size_t(heads) * capacity * hd * 2, "bench");
  int* pos = static_cast<int*>(device_alloc(4, "bench"));
  const int pos0 = 100;
  check(cudaMemcpy(pos, &pos0, 4, cudaMemcpyHostToDevice), "upload");
  for (int n : {1, 512}) {
    void* qkv = device_alloc(size_t(n * width) * 2, "bench");
    bench::fill_random_half(qkv, size_t(n * width), 4);
    RopeStoreArgs a;
    a.qkv = qkv;
    a.ld = width;
    a.k_offset = heads * hd;
    a.v_offset = 2 * heads * hd;
    a.n_tokens = n;
    a.n_heads = a.kv_heads = heads;
    a.head_dim = hd;
    a.pos0 = pos;
    a.cos = a.sin = static_cast<const float*>(tab);
    a.k_cache = kc;
    a.v_cache = vc;
    a.capacity = capacity;
    const double us = bench::median_us([&](cudaStream_t s) { rope_store_kv(a, DType::F16, s); }, bench::iterations());
    // q and k read and written, v read, k and v written to the cache, angles read.
    bench::report(str("rope_store_kv n=", n, " 32x128"), us, double(n) * (heads * hd * 2.0 * (2 + 2 + 1 + 2) + hd * 4.0));
    device_free(qkv);
  }
  for (void* p : {tab, kc, vc, static_cast<void*>(pos)}) device_free(p);
}

}  // namespace aqlm::cuda
