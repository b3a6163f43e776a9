#include "core/quant/compute_device.h"

#include "core/common/error.h"
#ifdef AQLM_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#endif

namespace aqlm {

const char* compute_device_name(ComputeDevice device) { return device == ComputeDevice::Cuda ? "cuda" : "cpu"; }

ComputeDevice parse_compute_device(const std::string& name) {
  if (name == "cpu") return ComputeDevice::Cpu;
  if (name == "cuda") return ComputeDevice::Cuda;
  fail("unknown device '", name, "' (choose cpu or cuda)");
}

std::string cuda_quantization_unavailable_reason() {
#ifdef AQLM_HAVE_CUDA
  return cuda::no_device_reason();
#else
  return "this build has no CUDA support (it was configured without a CUDA compiler)";
#endif
}

void require_cuda_quantization(const std::string& what) {
  const std::string why = cuda_quantization_unavailable_reason();
  AQLM_CHECK(why.empty(), what, ": ", why);
}

}  // namespace aqlm
