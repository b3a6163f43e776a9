#include "core/runtime/run_memory.h"

#include <algorithm>

#include "core/common/error.h"

namespace aqlm {

RunMemoryEstimate estimate_run_memory(const ModelConfig& c, std::int64_t weight_bytes, int context, Device device, int batch) {
  AQLM_CHECK(context > 0, "memory estimate: the context must be at least one token (got ", context, ")");
  AQLM_CHECK(batch > 0, "memory estimate: the batch must be at least one token (got ", batch, ")");
  const std::int64_t layers = c.num_layers, hidden = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(),
                     ffn = c.intermediate_size, vocab = c.vocab_size, tokens = batch;
  RunMemoryEstimate m;
  m.weights = weight_bytes;
  if (device == Device::Cpu) {
    // kv_cache.h: fp32 keys and values. cpu_engine: x, xn, tmp (hidden), q, att (q_dim), k, v
    // (kv_dim), gate, up (ffn) per token of a batch, and the caller's logits of every token.
    m.kv_cache = 2 * layers * context * kv * 4;
    m.activations = tokens * (3 * hidden + 2 * q + 2 * kv + 2 * ffn + vocab) * 4;
  } else {
    // cuda_engine: fp16 keys and values; the fp32 stream x, fp16 xn, qkv, att, tmp, gate_up, h;
    // logits of at most 64 rows in fp32 plus the LM head's fp16 output.
    const std::int64_t logit_rows = std::min<std::int64_t>(tokens, 64);
    m.kv_cache = 2 * layers * context * kv * 2;
    m.activations = tokens * hidden * 4 + tokens * (hidden + (q + 2 * kv) + q + hidden + 2 * ffn + ffn) * 2 +
                    logit_rows * vocab * (4 + 2);
  }
  return m;
}

}  // namespace aqlm
