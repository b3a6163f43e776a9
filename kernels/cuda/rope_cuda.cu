#include "kernels/cuda/rope_cuda.h"

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

using engine::from_float;
using engine::to_float;

constexpr int kThreads = 128;

// One block per token. Work items: (q or k head, pair i < half) rotations, then v copies.
template <typename T>
__global__ void __launch_bounds__(kThreads) rope_store_kernel(RopeStoreArgs a) {
  const int t = blockIdx.x;
  const int pos = *a.pos0 + t;
  const int half = a.head_dim / 2;
  T* row = static_cast<T*>(a.qkv) + int64_t(t) * a.ld;
  const float* cs = a.cos + int64_t(pos) * half;
  const float* sn = a.sin + int64_t(pos) * half;
  T* kc = static_cast<T*>(a.k_cache);
  T* vc = static_cast<T*>(a.v_cache);
  const int rotations = (a.n_heads + a.kv_heads) * half;
  for (int item = threadIdx.x; item < rotations; item += kThreads) {
    const int head = item / half, i = item % half;
    const bool is_q = head < a.n_heads;
    T* h = is_q ? row + int64_t(head) * a.head_dim : row + a.k_offset + int64_t(head - a.n_heads) * a.head_dim;
    const float x0 = to_float(h[i]), x1 = to_float(h[i + half]);
    const T r0 = from_float<T>(x0 * cs[i] - x1 * sn[i]);
    const T r1 = from_float<T>(x1 * cs[i] + x0 * sn[i]);
    if (is_q) {
      h[i] = r0;
      h[i + half] = r1;
    } else {
      T* dst = kc + (int64_t(head - a.n_heads) * a.capacity + pos) * a.head_dim;
      dst[i] = r0;
      dst[i + half] = r1;
    }
  }
  const int values = a.kv_heads * a.head_dim;
  const T* v = row + a.v_offset;
  for (int item = threadIdx.x; item < values; item += kThreads) {
    const int head = item / a.head_dim, d = item % a.head_dim;
    vc[(int64_t(head) * a.capacity + pos) * a.head_dim + d] = v[item];
  }
}

}  // namespace

void rope_store_kv(const RopeStoreArgs& a, DType act, cudaStream_t stream) {
  if (a.n_tokens == 0) return;
  AQLM_CHECK(a.qkv && a.pos0 && a.cos && a.sin && a.k_cache && a.v_cache, "RoPE: missing buffer");
  AQLM_CHECK(a.n_tokens > 0 && a.head_dim > 0 && a.head_dim % 2 == 0 && a.n_heads > 0 && a.kv_heads > 0,
             "RoPE: ", a.n_tokens, " tokens, ", a.n_heads, "/", a.kv_heads, " heads of dimension ", a.head_dim,
             " (an even head dimension is needed)");
  if (act == DType::BF16)
    rope_store_kernel<__nv_bfloat16><<<unsigned(a.n_tokens), kThreads, 0, stream>>>(a);
  else
    rope_store_kernel<__half><<<unsigned(a.n_tokens), kThreads, 0, stream>>>(a);
  check_launch("RoPE + KV store");
}

}  // namespace aqlm::cuda
