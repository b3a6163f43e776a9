// Attention on Llama-2-7B heads (32 x 128, and 8 KV heads for GQA): decode at several cache
// lengths (bytes: the visible K and V), and a 512 / 2048-token prefill (FLOPs: QK^T and PV
// over the causal half).
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_bench.cuh"

namespace aqlm::cuda {

namespace {
struct AttnBuffers {
  AttnBuffers(int heads, int kv_heads, int hd, int capacity, int n) {
    q = device_alloc(size_t(n) * heads * hd * 2, "bench");
    out = device_alloc(size_t(n) * heads * hd * 2, "bench");
    k = device_alloc(size_t(kv_heads) * capacity * hd * 2, "bench");
    v = device_alloc(size_t(kv_heads) * capacity * hd * 2, "bench");
    pos = static_cast<int*>(device_alloc(4, "bench"));
    bench::fill_random_half(q, size_t(n) * heads * hd, 5);
    bench::fill_random_half(k, size_t(kv_heads) * capacity * hd, 6);
    bench::fill_random_half(v, size_t(kv_heads) * capacity * hd, 7);
  }
  ~AttnBuffers() {
    for (void* p : {q, out, k, v, static_cast<void*>(pos)}) device_free(p);
  }
  void *q, *out, *k, *v;
  int* pos;
};
}  // namespace

AQLM_ENGINE_BENCH(bench_attention_decode) {
  const int capacity = 4096, hd = 128;
  for (int kv_heads : {32, 8}) {
    AttnBuffers b(32, kv_heads, hd, capacity, 1);
    const int splits = attention_decode_splits(32, kv_heads, capacity);
    void* ws = device_alloc(attention_decode_workspace_floats(32, hd, splits) * 4, "bench");
    for (int pos : {127, 1023, 4095}) {
      if (kv_heads == 8 && pos != 4095) continue;
      check(cudaMemcpy(b.pos, &pos, 4, cudaMemcpyHostToDevice), "upload");
      AttentionArgs a;
      a.q = b.q;
      a.ldq = a.ldo = 32 * hd;
      a.out = b.out;
      a.k_cache = b.k;
      a.v_cache = b.v;
      a.capacity = capacity;
      a.n_tokens = 1;
      a.n_heads = 32;
      a.kv_heads = kv_heads;
      a.head_dim = hd;
      a.pos0 = b.pos;
      a.scale = 0.088f;
      const double us = bench::median_us(
          [&](cudaStream_t s) { attention_decode(a, splits, static_cast<float*>(ws), DType::F16, s); },
          bench::iterations());
      bench::report(str("attention_decode 32/", kv_heads, "x128 len=", pos + 1), us,
                    2.0 * kv_heads * (pos + 1) * hd * 2, 0, str(splits, " splits, incl. combine"));
    }
    device_free(ws);
  }
}

AQLM_ENGINE_BENCH(bench_attention_prefill) {
  const int hd = 128, heads = 32;
  for (int n : {512, 2048}) {
    AttnBuffers b(heads, heads, hd, n, n);
    const int zero = 0;
    check(cudaMemcpy(b.pos, &zero, 4, cudaMemcpyHostToDevice), "upload");
    AttentionArgs a;
    a.q = b.q;
    a.ldq = a.ldo = heads * hd;
    a.out = b.out;
    a.k_cache = b.k;
    a.v_cache = b.v;
    a.capacity = n;
    a.n_tokens = n;
    a.n_heads = a.kv_heads = heads;
    a.head_dim = hd;
    a.pos0 = b.pos;
    a.scale = 0.088f;
    const double us = bench::median_us([&](cudaStream_t s) { attention_prefill(a, DType::F16, s); },
                                       std::min(bench::iterations(), 50), 3);
    const double flops = 4.0 * heads * hd * double(n) * (n + 1) / 2;
    bench::report(str("attention_prefill n=", n, " 32x128"), us, 0, flops, "fp32 CUDA cores");
  }
}

}  // namespace aqlm::cuda
