#pragma once
// RMSNorm as Llama/Mistral/Qwen2 define it: y = x / sqrt(mean(x^2) + eps) * weight.
#include <cstdint>

namespace aqlm::cpu {

// One row of `dim` values; y may alias x.
void rmsnorm(const float* x, const float* weight, float* y, int64_t dim, float eps);

}  // namespace aqlm::cpu
