#include "core/runtime/engine.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/common/error.h"
#include "core/model/model.h"
#include "core/runtime/cpu_engine.h"
#include "core/runtime/cuda_engine.h"
#ifdef AQLM_HAVE_CUDA
#include "kernels/cuda/cuda_check.h"
#endif

namespace aqlm {

const char* device_name(Device d) {
  switch (d) {
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

Device parse_device(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (lower == "cpu") return Device::Cpu;
  if (lower == "cuda" || lower == "gpu") return Device::Cuda;
  fail("unknown device '", name, "' (expected cpu or cuda)");
}

int32_t Engine::forward_argmax(std::span<const int32_t> tokens) {
  std::vector<float> logits(size_t(config().vocab_size));
  forward(tokens, logits.data());
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int cuda_device_count() {
#ifdef AQLM_HAVE_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

std::unique_ptr<Engine> create_engine(const Model& model, const EngineOptions& options) {
  AQLM_CHECK(options.context_length >= 0, "context length ", options.context_length, " must not be negative");
  AQLM_CHECK(options.max_batch >= 1, "max batch ", options.max_batch, " must be at least 1");
  AQLM_CHECK(options.threads >= 0, "threads ", options.threads, " must not be negative");
  switch (options.device) {
    case Device::Cpu: return create_cpu_engine(model, options);
    case Device::Cuda:
#ifdef AQLM_HAVE_CUDA
      return create_cuda_engine(model, options);
#else
      fail("--device cuda: this build has no CUDA support (it was built without the CUDA compiler); use --device cpu");
#endif
  }
  fail("unknown device");
}

}  // namespace aqlm
