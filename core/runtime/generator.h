#pragma once
// Turns a prompt into a stream of generated token ids on an Engine, with timings.
// A Generator remembers what the engine's KV cache holds: a new prompt that extends the
// previous conversation only runs its new tokens (chat turns do not re-read the history).
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/runtime/sampler.h"

namespace aqlm {

class Engine;

struct GenerationConfig {
  int max_new_tokens = 256;
  // Generation stops when one of these is sampled (it is not streamed). Empty: the
  // model config's eos_token_ids.
  std::vector<int32_t> stop_token_ids;
  SamplerConfig sampler;
};

enum class StopReason { EndOfSequence, MaxTokens, Cancelled, ContextFull };
const char* stop_reason_name(StopReason r);  // "eos", "max_tokens", "cancelled", "context_full"

struct GenerationStats {
  int prompt_tokens = 0;      // tokens of the prompt
  int prefill_tokens = 0;     // of those, the tokens that were run (the rest were cached)
  int generated_tokens = 0;   // tokens streamed to the callback
  double time_to_first_token_s = 0;  // from the call to the first sampled token (prefill + sampling)
  double prefill_tokens_per_s = 0;
  double decode_tokens_per_s = 0;    // tokens after the first, per second of decoding
  double total_s = 0;
  StopReason stop_reason = StopReason::MaxTokens;
};

class Generator {
 public:
  explicit Generator(Engine& engine);

  // Streams each new token id to `on_token` as soon as it is chosen. `cancel` (may be null)
  // is checked before every forward step. Throws Error on an empty prompt, a prompt longer
  // than the context or invalid sampler settings.
  GenerationStats generate(std::span<const int32_t> prompt, const GenerationConfig& config,
                           const std::function<void(int32_t)>& on_token, const std::atomic<bool>* cancel = nullptr);

  // The ids the engine's KV cache currently holds, in order.
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  // Forgets the cache (the next prompt is run from scratch).
  void reset();

 private:
  Engine& engine_;
  std::vector<int32_t> cached_;
  std::vector<float> logits_;
};

}  // namespace aqlm
