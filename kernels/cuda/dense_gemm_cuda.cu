#include "kernels/cuda/dense_gemm_cuda.h"

#include <cublas_v2.h>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {
namespace {

void check_blas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLAS ", what, " failed: ", cublasGetStatusName(status), " (", cublasGetStatusString(status), ")");
}

cublasHandle_t as_handle(void* h) { return static_cast<cublasHandle_t>(h); }

}  // namespace

Blas::Blas(cudaStream_t stream) {
  cublasHandle_t h = nullptr;
  check_blas(cublasCreate(&h), "initialisation");
  handle_ = h;
  try {
    check_blas(cublasSetStream(h, stream), "stream binding");
    workspace_ = device_alloc(kWorkspaceBytes, "the cuBLAS workspace");
    check_blas(cublasSetWorkspace(h, workspace_, kWorkspaceBytes), "workspace binding");
  } catch (...) {
    device_free(workspace_);
    cublasDestroy(h);
    throw;
  }
}

Blas::~Blas() {
  if (handle_) cublasDestroy(as_handle(handle_));
  device_free(workspace_);
}

void Blas::linear(const void* w, int64_t out, int64_t in, const void* x, int64_t ldx, int n, void* y, int64_t ldy,
                  DType act, bool y_f32) {
  if (n == 0) return;
  AQLM_CHECK(w && x && y && n > 0 && out > 0 && in > 0 && ldx >= in && ldy >= out, "dense projection: ", out, " x ", in,
             " on ", n, " tokens (strides ", ldx, ", ", ldy, ")");
  AQLM_CHECK(out < (int64_t(1) << 31) && in < (int64_t(1) << 31), "dense projection: ", out, " x ", in,
             " is larger than cuBLAS indexes");
  const cudaDataType_t type = act == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
  const float one = 1.0f, zero = 0.0f;
  // Column-major view: C [out, n] = W^T' [out, in] . X' [in, n], where W' = W read as a
  // column-major [in, out] matrix and X' = x as [in, n].
  check_blas(cublasGemmEx(as_handle(handle_), CUBLAS_OP_T, CUBLAS_OP_N, int(out), n, int(in), &one, w, type, int(in), x,
                          type, int(ldx), &zero, y, y_f32 ? CUDA_R_32F : type, int(ldy), CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT),
             "GEMM");
}

}  // namespace aqlm::cuda
