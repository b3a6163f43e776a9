#pragma once
// Test helpers for the inference-engine kernels: device buffers, fresh random data rounded
// to the activation type (with the exact float values the CPU reference uses), tolerances.
// Every test draws a fresh seed and reports it (SCOPED_TRACE), so a failure reproduces.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda::test {

#define AQLM_REQUIRE_GPU()                                                  \
  if (::aqlm::cuda::device_count() == 0) GTEST_SKIP() << ::aqlm::cuda::no_device_reason()

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes), p_(device_alloc(bytes == 0 ? 16 : bytes, "a test buffer")) {}
  template <typename T>
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size() * sizeof(T)) {
    upload(host.data());
  }
  ~DeviceBuffer() { device_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return p_; }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }
  void upload(const void* src) { check(cudaMemcpy(p_, src, bytes_, cudaMemcpyHostToDevice), "uploading test data"); }
  template <typename T>
  std::vector<T> download() const {
    check(cudaDeviceSynchronize(), "running the kernel under test");
    std::vector<T> out(bytes_ / sizeof(T));
    check(cudaMemcpy(out.data(), p_, out.size() * sizeof(T), cudaMemcpyDeviceToHost), "downloading test results");
    return out;
  }
  // 0xff bytes: NaN in fp32, fp16 and bf16, so an element nothing wrote cannot pass.
  void poison() { check(cudaMemset(p_, 0xff, bytes_), "poisoning a test buffer"); }

 private:
  size_t bytes_;
  void* p_;
};

inline uint64_t fresh_seed() {
  std::random_device rd;
  return (uint64_t(rd()) << 32) ^ rd();
}

inline const char* act_name(DType t) { return t == DType::BF16 ? "bf16" : "fp16"; }
inline uint16_t to_act(float v, DType t) { return t == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v); }
inline float from_act(uint16_t v, DType t) { return t == DType::BF16 ? bf16_to_f32(v) : f16_to_f32(v); }
// Half a unit in the last place, relative: the largest relative error of one rounding.
inline double act_rounding(DType t) { return t == DType::BF16 ? 1.0 / 256 : 1.0 / 2048; }

// n values ~ N(0, sigma) rounded to `act`: the bits to upload and their exact values.
struct ActData {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};
inline ActData random_act(size_t n, DType act, std::mt19937_64& rng, float sigma = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sigma);
  ActData d;
  d.bits.resize(n);
  d.values.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.bits[i] = to_act(normal(rng), act);
    d.values[i] = from_act(d.bits[i], act);
  }
  return d;
}

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng, float sigma = 1.0f) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace aqlm::cuda::test
