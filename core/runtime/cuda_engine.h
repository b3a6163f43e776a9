#pragma once
// The CUDA inference engine (cuda_engine.cpp): the whole model on one GPU in fp16 (bf16 when
// the model's torch_dtype is bfloat16), fp32 residual stream and accumulation, KV cache in
// GPU memory, decode steps replayed from CUDA graphs. Part of aqlm_core only in builds with
// CUDA (AQLM_HAVE_CUDA); create_engine() dispatches Device::Cuda here.
#include <cstddef>
#include <memory>

#include "core/runtime/engine.h"

namespace aqlm {

struct CudaEngineSettings {
  // Replay single-token steps from CUDA graphs (one for logits, one for the device argmax);
  // off: every kernel is launched one by one (the same kernels, bit-identical results).
  bool use_graphs = true;
};

// Throws Error with one line when the engine cannot run: "--device cuda: no CUDA device found
// (...)", "not enough GPU memory: the model needs X GB, Y GB free on <GPU>", a tensor that is
// missing or misshapen (the CPU engine's messages), a head dimension the kernels do not take.
std::unique_ptr<Engine> create_cuda_engine(const Model& model, const EngineOptions& options,
                                           const CudaEngineSettings& settings = {});

// Bytes of GPU memory create_cuda_engine would allocate for this model and options (weights,
// KV cache, activations, workspaces; not the CUDA context). Throws like create_cuda_engine
// for a model it cannot run; needs no GPU.
size_t cuda_engine_memory_bytes(const Model& model, const EngineOptions& options);

}  // namespace aqlm
