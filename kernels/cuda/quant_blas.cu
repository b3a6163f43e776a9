// QuantBlas: row-major cuBLAS products for the GPU quantization backend (see quant_cuda_common.h).
#include <cublas_v2.h>

#include "core/common/error.h"
#include "kernels/cuda/quant_cuda_common.h"

namespace aqlm::cuda {

namespace {
cublasHandle_t as_handle(void* h) { return static_cast<cublasHandle_t>(h); }

void check_blas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  if (status == CUBLAS_STATUS_ALLOC_FAILED) fail("CUDA out of memory in cuBLAS (", what, ")");
  fail("cuBLAS ", what, " failed: ", cublasGetStatusString(status));
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap places
// and each keeps its own transpose flag (a row-major [r, c] array is a column-major [c, r] one).
}  // namespace

QuantBlas::QuantBlas() {
  cublasHandle_t h = nullptr;
  check_blas(cublasCreate(&h), "initialisation");
  handle_ = h;
  check_blas(cublasSetStream(h, nullptr), "stream selection");
}

QuantBlas::~QuantBlas() {
  if (handle_) cublasDestroy(as_handle(handle_));
}

void QuantBlas::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
                     GemmPrecision precision) {
  if (m == 0 || n == 0) return;
  const cublasComputeType_t compute =
      precision == GemmPrecision::Tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  check_blas(cublasGemmEx(as_handle(handle_), op(trans_b), op(trans_a), int(n), int(m), int(k), &alpha, b, CUDA_R_32F,
                          int(ldb), a, CUDA_R_32F, int(lda), &beta, c, CUDA_R_32F, int(ldc), compute,
                          CUBLAS_GEMM_DEFAULT),
             "float matrix product");
}

void QuantBlas::gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                             int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
                             float* c, int64_t ldc, int64_t stride_c, int64_t batch, GemmPrecision precision) {
  if (m == 0 || n == 0 || batch == 0) return;
  const cublasComputeType_t compute =
      precision == GemmPrecision::Tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  check_blas(cublasGemmStridedBatchedEx(as_handle(handle_), op(trans_b), op(trans_a), int(n), int(m), int(k), &alpha,
                                        b, CUDA_R_32F, int(ldb), stride_b, a, CUDA_R_32F, int(lda), stride_a, &beta, c,
                                        CUDA_R_32F, int(ldc), stride_c, int(batch), compute, CUBLAS_GEMM_DEFAULT),
             "batched float matrix product");
}

void QuantBlas::dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                      int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  check_blas(cublasDgemm(as_handle(handle_), op(trans_b), op(trans_a), int(n), int(m), int(k), &alpha, b, int(ldb), a,
                         int(lda), &beta, c, int(ldc)),
             "double matrix product");
}

void QuantBlas::syrk_lower(const double* x, int64_t rows, int64_t n, int64_t ldx, double* sum) {
  if (rows == 0 || n == 0) return;
  const double one = 1.0;
  // Row-major x [rows, n] is column-major x^T [n, rows]; C = x^T x. The row-major lower
  // triangle is cuBLAS's (column-major) upper one.
  check_blas(cublasDsyrk(as_handle(handle_), CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, int(n), int(rows), &one, x, int(ldx),
                         &one, sum, int(n)),
             "XTX accumulation (dsyrk)");
}

std::pair<size_t, size_t> device_memory() {
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "reading the GPU's free memory");
  return {free_bytes, total_bytes};
}

void require_device_memory(size_t bytes, const std::string& what) {
  const auto [free_bytes, total_bytes] = device_memory();
  AQLM_CHECK(bytes <= free_bytes, what, " needs ", (bytes + (1 << 20) - 1) >> 20, " MiB of GPU memory but the GPU has ",
             free_bytes >> 20, " MiB free (of ", total_bytes >> 20, " MiB)");
}

}  // namespace aqlm::cuda
