#pragma once
// Dense projections of the CUDA inference engine through cuBLAS: y = x W^T with W stored as
// PyTorch stores a Linear (row-major [out, in]), fp16 or bf16 operands, fp32 accumulation
// (CUBLAS_COMPUTE_32F), output in the activation type or fp32 (the LM head's logits).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

// One cuBLAS handle bound to one stream, with its own workspace so that its calls can be
// captured into a CUDA graph (cuBLAS then allocates nothing during capture).
class Blas {
 public:
  explicit Blas(cudaStream_t stream);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  static constexpr size_t kWorkspaceBytes = size_t(32) << 20;

  // y[t * ldy + r] = sum_k x[t * ldx + k] W[r * in + k] for t < n, r < out. x and W of `act`;
  // y of `act`, or fp32 when y_f32. Asynchronous on the handle's stream.
  void linear(const void* w, int64_t out, int64_t in, const void* x, int64_t ldx, int n, void* y, int64_t ldy,
              DType act, bool y_f32 = false);

 private:
  void* handle_ = nullptr;  // cublasHandle_t
  void* workspace_ = nullptr;
};

}  // namespace aqlm::cuda
