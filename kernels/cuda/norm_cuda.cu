#include "kernels/cuda/norm_cuda.h"

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

using engine::from_float;
using engine::to_float;

constexpr int kThreads = 256;

// One block per row. Two passes over the row: the second re-reads x from L1/L2 (a row is at
// most a few tens of KB), which keeps any width in one kernel without a register cache.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    add_rmsnorm_kernel(float* x, const T* residual, const float* weight, T* out, int64_t dim, float eps) {
  __shared__ float scratch[32];
  float* row = x + int64_t(blockIdx.x) * dim;
  const T* res = residual ? residual + int64_t(blockIdx.x) * dim : nullptr;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kThreads) {
    float v = row[i];
    if (res) {
      v += to_float(res[i]);
      row[i] = v;
    }
    sum = fmaf(v, v, sum);
  }
  sum = engine::block_sum(sum, scratch);
  const float inv = rsqrtf(sum / float(dim) + eps);
  T* o = out + int64_t(blockIdx.x) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += kThreads) o[i] = from_float<T>(row[i] * inv * weight[i]);
}

}  // namespace

void add_rmsnorm(float* x, const void* residual, const float* weight, void* out, DType act, int n, int64_t dim,
                 float eps, cudaStream_t stream) {
  if (n == 0) return;
  AQLM_CHECK(n > 0 && dim > 0, "RMSNorm: ", n, " rows of width ", dim);
  if (act == DType::BF16)
    add_rmsnorm_kernel<<<unsigned(n), kThreads, 0, stream>>>(x, static_cast<const __nv_bfloat16*>(residual), weight,
                                                             static_cast<__nv_bfloat16*>(out), dim, eps);
  else
    add_rmsnorm_kernel<<<unsigned(n), kThreads, 0, stream>>>(x, static_cast<const __half*>(residual), weight,
                                                             static_cast<__half*>(out), dim, eps);
  check_launch("RMSNorm");
}

}  // namespace aqlm::cuda
