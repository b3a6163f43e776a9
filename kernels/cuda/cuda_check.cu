#include "kernels/cuda/cuda_check.h"

#include <cuda_runtime.h>

#include <mutex>
#include <vector>

#include "core/common/error.h"

namespace aqlm::cuda {

namespace {
std::string describe(cudaError_t status) {
  return str(cudaGetErrorString(status), " (", cudaGetErrorName(status), ")");
}
}  // namespace

void check(cudaError_t status, const std::string& what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so later calls report their own
  if (status == cudaErrorMemoryAllocation) fail("CUDA out of memory while ", what, ": ", describe(status));
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver)
    fail("no CUDA GPU: ", what, ": ", describe(status));
  fail(what, ": ", describe(status));
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) fail(kernel, " kernel launch failed: ", describe(status));
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string no_device_reason() {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return str("no CUDA GPU: ", describe(status));
  }
  return n > 0 ? std::string() : std::string("no CUDA GPU: the driver reports 0 devices");
}

const DeviceProperties& device_properties() {
  static std::mutex mutex;
  static std::vector<DeviceProperties> cache;
  int device = 0;
  check(cudaGetDevice(&device), "reading the current CUDA device");
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() <= size_t(device)) cache.resize(size_t(device) + 1);
  DeviceProperties& p = cache[size_t(device)];
  if (p.sm_count == 0) {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, device), "reading the CUDA device's properties");
    p.sm_count = prop.multiProcessorCount;
    p.max_smem_per_block = int(prop.sharedMemPerBlockOptin);
    p.major = prop.major;
    p.minor = prop.minor;
    p.name = prop.name;
  }
  return p;
}

void* device_alloc(size_t bytes, const std::string& what) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), str("allocating ", (bytes + (1 << 20) - 1) >> 20, " MiB for ", what));
  return p;
}

void device_free(void* p) noexcept {
  if (p) cudaFree(p);
}

}  // namespace aqlm::cuda
