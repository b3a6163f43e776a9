#include "core/runtime/engine.h"

#include <algorithm>
#include <cctype>

#include "core/common/error.h"
#include "core/model/model.h"
#include "core/runtime/cpu_engine.h"

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

std::unique_ptr<Engine> create_engine(const Model& model, const EngineOptions& options) {
  AQLM_CHECK(options.context_length >= 0, "context length ", options.context_length, " must not be negative");
  AQLM_CHECK(options.max_batch >= 1, "max batch ", options.max_batch, " must be at least 1");
  AQLM_CHECK(options.threads >= 0, "threads ", options.threads, " must not be negative");
  switch (options.device) {
    case Device::Cpu: return create_cpu_engine(model, options);
    case Device::Cuda:
      fail("device cuda: this build has no CUDA inference engine yet (the CUDA kernels cover AQLM matrix products "
           "only); use --device cpu");
  }
  fail("unknown device");
}

}  // namespace aqlm
