#pragma once
// RMSNorm of the CUDA inference engine, fused with the residual add that precedes it:
//   x[t] += residual[t]                       (when residual is given; x is the fp32 stream)
//   out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight     (rounded to the activation type)
// as kernels/cpu/norm.h defines it; the sum of squares is accumulated in fp32.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

// x [n, dim] fp32 (updated in place when residual != nullptr), residual [n, dim] of `act`,
// weight [dim] fp32, out [n, dim] of `act`. Device pointers, asynchronous on `stream`.
void add_rmsnorm(float* x, const void* residual, const float* weight, void* out, DType act, int n, int64_t dim,
                 float eps, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
