#pragma once
// How much memory running a model takes, before loading it into an engine: for the studio's
// model library and `aqlm-cli info`. Counted from the buffers the engines allocate (cpu_engine,
// kv_cache, cuda_engine), not measured; allocator overhead and thread stacks are not included.
#include <cstdint>

#include "core/model/model_config.h"
#include "core/runtime/engine.h"

namespace aqlm {

struct RunMemoryEstimate {
  std::int64_t weights = 0;      // as the engine holds them (what the caller passed)
  std::int64_t kv_cache = 0;     // keys and values of every layer for the whole context
  std::int64_t activations = 0;  // one prefill batch of `batch` tokens, with its logits
  std::int64_t total() const { return weights + kv_cache + activations; }
};

// `weight_bytes`: the weights as loaded (Model::weights.total_bytes() on the CPU). The CPU
// engine keeps an fp32 KV cache and fp32 activations and writes every token's logits of a
// batch; the CUDA engine keeps an fp16 KV cache, fp16 activations besides the fp32 residual
// stream, and at most 64 rows of logits per call.
RunMemoryEstimate estimate_run_memory(const ModelConfig& config, std::int64_t weight_bytes, int context, Device device,
                                      int batch = 512);

}  // namespace aqlm
