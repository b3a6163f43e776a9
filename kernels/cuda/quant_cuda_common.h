#pragma once
// Shared pieces of the GPU quantization backend (kernels/cuda/quant_*.cu, core/quant/*_cuda.cpp):
// typed device arrays and a cuBLAS handle with row-major products. Everything runs on the legacy
// default stream (stream 0), so host copies and kernels are ordered without explicit events.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {

// A typed cudaMalloc'd array; errors (out of memory included) name `what`.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(size_t n, const std::string& what) { resize(n, what); }
  ~DeviceArray() { device_free(p_); }
  DeviceArray(DeviceArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  // Reallocates only when the size changes; the contents are then undefined.
  void resize(size_t n, const std::string& what) {
    if (n == n_) return;
    device_free(p_);
    p_ = nullptr;
    n_ = 0;
    if (n > 0) p_ = static_cast<T*>(device_alloc(n * sizeof(T), what));
    n_ = n;
  }
  void release() { resize(0, ""); }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  void upload(const T* src, size_t n, size_t offset = 0) {
    check(cudaMemcpy(p_ + offset, src, n * sizeof(T), cudaMemcpyHostToDevice), "copying data to the GPU");
  }
  void upload(const std::vector<T>& src) {
    AQLM_CHECK(src.size() <= n_, "GPU array: ", src.size(), " values do not fit in ", n_);
    upload(src.data(), src.size());
  }
  void download(T* dst, size_t n, size_t offset = 0) const {
    check(cudaMemcpy(dst, p_ + offset, n * sizeof(T), cudaMemcpyDeviceToHost), "copying results from the GPU");
  }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    if (n_) download(v.data(), n_);
    return v;
  }
  void zero() {
    if (n_) check(cudaMemset(p_, 0, bytes()), "clearing GPU memory");
  }
  // 0xff bytes: NaN for floating types, the largest value for unsigned ones (tests poison outputs).
  void poison() {
    if (n_) check(cudaMemset(p_, 0xff, bytes()), "poisoning GPU memory");
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Precision of float products: exact fp32 (the CPU path's arithmetic) or TF32 tensor cores
// (10-bit mantissa inputs, fp32 accumulation: ~5e-4 relative per product, several times faster).
enum class GemmPrecision { Fp32, Tf32 };

// A cuBLAS handle on stream 0. All matrices are row-major, as the rest of the project stores them;
// the calls map them onto cuBLAS's column-major convention.
class QuantBlas {
 public:
  QuantBlas();
  ~QuantBlas();
  QuantBlas(const QuantBlas&) = delete;
  QuantBlas& operator=(const QuantBlas&) = delete;

  // C[m, n] = alpha * op(A) op(B) + beta * C; op(A) is [m, k] (A stored [k, m] when trans_a),
  // op(B) is [k, n]. Leading dimensions are row strides.
  void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
            const float* b, int64_t ldb, float beta, float* c, int64_t ldc, GemmPrecision precision);
  // The same over `batch` problems whose operands start stride_* floats apart.
  void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                    int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta, float* c,
                    int64_t ldc, int64_t stride_c, int64_t batch, GemmPrecision precision);
  // Double precision, same convention.
  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
             const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
  // sum[n, n] += x^T x for x [rows, n] (row stride ldx), double. Only the row-major lower
  // triangle (j <= i) of `sum` is written.
  void syrk_lower(const double* x, int64_t rows, int64_t n, int64_t ldx, double* sum);

 private:
  void* handle_ = nullptr;  // cublasHandle_t
};

// Free and total memory of the current device, bytes.
std::pair<size_t, size_t> device_memory();
// Throws a one-line Error when `bytes` exceed the free memory of the GPU, naming `what`.
void require_device_memory(size_t bytes, const std::string& what);

}  // namespace aqlm::cuda
