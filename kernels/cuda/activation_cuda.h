#pragma once
// Element-wise steps of the CUDA inference engine, fp32 arithmetic on fp16/bf16 data:
// - swiglu: h[t, i] = silu(gate[t, i]) * up[t, i] (as kernels/cpu/activation.h), with gate
//   and up read from one [n, ld_in] buffer (the fused gate/up projection: up at + up_offset).
// - add_bias: y[t, i] += bias[i] (fp32 bias, the projection biases of Qwen2).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

// h [n, width] (contiguous) from gate = in + t*ld_in, up = gate + up_offset. Asynchronous.
void swiglu(const void* in, int64_t ld_in, int64_t up_offset, void* h, int n, int64_t width, DType act,
            cudaStream_t stream = nullptr);

// y [n, width] with row stride ldy += bias [width]. Asynchronous.
void add_bias(void* y, int64_t ldy, const float* bias, int n, int64_t width, DType act, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
