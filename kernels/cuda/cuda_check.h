#pragma once
// CUDA error handling for the engine: every runtime call is checked and a failure becomes
// one aqlm::Error line saying what was being done ("no CUDA GPU: ...", "CUDA out of memory
// while allocating 64 MiB for the AQLM gemv workspace: ...", "AQLM gemv kernel launch failed: ...").
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace aqlm::cuda {

// Throws aqlm::Error("<what>: <CUDA's message> (<error name>)") unless status is cudaSuccess;
// out-of-memory and no-device errors get their own wording.
void check(cudaError_t status, const std::string& what);
// Checks the launch just made (cudaGetLastError) for the kernel named `kernel`.
void check_launch(const char* kernel);

// Number of CUDA GPUs, 0 when there is none or no usable driver (never throws).
int device_count();
// Why no GPU can be used ("" when one can): the text tests print when they skip.
std::string no_device_reason();

struct DeviceProperties {
  int sm_count = 0;
  int max_smem_per_block = 0;  // opt-in limit, bytes
  int major = 0, minor = 0;
  std::string name;
};
// Of the current device (cached per device).
const DeviceProperties& device_properties();

// cudaMalloc that throws a clear out-of-memory error naming `what`.
void* device_alloc(size_t bytes, const std::string& what);
void device_free(void* p) noexcept;

}  // namespace aqlm::cuda
