#include "kernels/cuda/activation_cuda.h"

#include <algorithm>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

using engine::from_float;
using engine::to_float;

constexpr int kThreads = 256;

// Grid (column blocks, tokens).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    swiglu_kernel(const T* in, int64_t ld_in, int64_t up_offset, T* h, int64_t width) {
  const T* gate = in + int64_t(blockIdx.y) * ld_in;
  const T* up = gate + up_offset;
  T* out = h + int64_t(blockIdx.y) * width;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < width; i += int64_t(gridDim.x) * kThreads) {
    const float g = to_float(gate[i]);
    out[i] = from_float<T>(g / (1.0f + expf(-g)) * to_float(up[i]));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) add_bias_kernel(T* y, int64_t ldy, const float* bias, int64_t width) {
  T* row = y + int64_t(blockIdx.y) * ldy;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < width; i += int64_t(gridDim.x) * kThreads)
    row[i] = from_float<T>(to_float(row[i]) + bias[i]);
}

dim3 grid_for(int n, int64_t width) {
  return dim3(unsigned(std::min<int64_t>((width + kThreads - 1) / kThreads, 1024)), unsigned(n));
}

}  // namespace

void swiglu(const void* in, int64_t ld_in, int64_t up_offset, void* h, int n, int64_t width, DType act,
            cudaStream_t stream) {
  if (n == 0 || width == 0) return;
  AQLM_CHECK(n > 0 && width > 0 && ld_in >= width && up_offset >= width && up_offset + width <= ld_in,
             "SwiGLU: ", n, " rows of width ", width, " in rows of ", ld_in, " with up at ", up_offset);
  if (act == DType::BF16)
    swiglu_kernel<<<grid_for(n, width), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(in), ld_in, up_offset,
                                                               static_cast<__nv_bfloat16*>(h), width);
  else
    swiglu_kernel<<<grid_for(n, width), kThreads, 0, stream>>>(static_cast<const __half*>(in), ld_in, up_offset,
                                                               static_cast<__half*>(h), width);
  check_launch("SwiGLU");
}

void add_bias(void* y, int64_t ldy, const float* bias, int n, int64_t width, DType act, cudaStream_t stream) {
  if (n == 0 || width == 0) return;
  AQLM_CHECK(n > 0 && width > 0 && ldy >= width && bias, "bias add: ", n, " rows of width ", width, " (stride ", ldy,
             ")");
  if (act == DType::BF16)
    add_bias_kernel<<<grid_for(n, width), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(y), ldy, bias, width);
  else
    add_bias_kernel<<<grid_for(n, width), kThreads, 0, stream>>>(static_cast<__half*>(y), ldy, bias, width);
  check_launch("bias add");
}

}  // namespace aqlm::cuda
