#pragma once
// The fp32 CPU forward pass of Llama / Mistral / Qwen2 decoders (see cpu_engine.cpp).
#include <memory>

#include "core/runtime/engine.h"

namespace aqlm {

// Throws Error when the CPU lacks AVX2/FMA/F16C, a tensor is missing or has the wrong shape.
std::unique_ptr<Engine> create_cpu_engine(const Model& model, const EngineOptions& options);

}  // namespace aqlm
