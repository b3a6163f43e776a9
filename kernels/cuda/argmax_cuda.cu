#include "kernels/cuda/argmax_cuda.h"

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

constexpr int kThreads = 1024;

// (value, index) pairs ordered by larger value, then smaller index.
__device__ __forceinline__ void keep_better(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

// One block: each thread scans a strided share, then a warp and a block reduction.
__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* x, int64_t n, int32_t* out) {
  __shared__ float best_v[32];
  __shared__ int best_i[32];
  float v = -INFINITY;
  int idx = int(n);  // "none yet": loses every tie against a real index
  for (int64_t k = threadIdx.x; k < n; k += kThreads) {
    const float e = x[k];
    if (e > v) {  // strictly: the first of equal values in this thread's share stays
      v = e;
      idx = int(k);
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(engine::kFullMask, v, o);
    const int oi = __shfl_xor_sync(engine::kFullMask, idx, o);
    keep_better(v, idx, ov, oi);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    best_v[warp] = v;
    best_i[warp] = idx;
  }
  __syncthreads();
  if (warp == 0) {
    v = best_v[lane];
    idx = best_i[lane];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(engine::kFullMask, v, o);
      const int oi = __shfl_xor_sync(engine::kFullMask, idx, o);
      keep_better(v, idx, ov, oi);
    }
    if (lane == 0) *out = idx < n ? idx : 0;
  }
}

}  // namespace

void argmax(const float* x, int64_t n, int32_t* out, cudaStream_t stream) {
  AQLM_CHECK(x && out && n > 0 && n < (int64_t(1) << 31), "argmax: ", n, " values or a missing buffer");
  argmax_kernel<<<1, kThreads, 0, stream>>>(x, n, out);
  check_launch("argmax");
}

}  // namespace aqlm::cuda
