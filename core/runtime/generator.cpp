#include "core/runtime/generator.h"

#include <algorithm>
#include <chrono>

#include "core/common/error.h"
#include "core/runtime/engine.h"

namespace aqlm {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::EndOfSequence: return "eos";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::ContextFull: return "context_full";
  }
  return "?";
}

Generator::Generator(Engine& engine) : engine_(engine) {}

void Generator::reset() {
  cached_.clear();
  engine_.rewind(0);
}

GenerationStats Generator::generate(std::span<const int32_t> prompt, const GenerationConfig& config,
                                    const std::function<void(int32_t)>& on_token, const std::atomic<bool>* cancel) {
  const auto start = Clock::now();
  AQLM_CHECK(!prompt.empty(), "generate: the prompt has no tokens");
  AQLM_CHECK(config.max_new_tokens >= 0, "max new tokens ", config.max_new_tokens, " must not be negative");
  AQLM_CHECK(int(prompt.size()) <= engine_.context_length(), "the prompt has ", prompt.size(),
             " tokens but the context holds ", engine_.context_length());
  Sampler sampler(config.sampler);
  const std::vector<int32_t>& stops = config.stop_token_ids.empty() ? engine_.config().eos_token_ids : config.stop_token_ids;
  const int vocab = engine_.config().vocab_size;
  logits_.resize(size_t(vocab));

  GenerationStats stats;
  stats.prompt_tokens = int(prompt.size());
  auto cancelled = [&] { return cancel && cancel->load(std::memory_order_relaxed); };

  // Reuse the cached prefix; at least one prompt token must run to produce logits.
  if (engine_.position() != int(cached_.size())) cached_.clear();  // someone else moved the engine
  size_t common = 0;
  const size_t limit = std::min(cached_.size(), prompt.size() - 1);
  while (common < limit && cached_[common] == prompt[common]) ++common;
  engine_.rewind(int(common));
  cached_.resize(common);

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  if (cancelled()) {
    stats.stop_reason = StopReason::Cancelled;
    stats.total_s = seconds_since(start);
    return stats;
  }
  // Greedy without a repetition penalty needs only the argmax, which the engine can find
  // where the logits are (on the GPU) and hand back as one id.
  const bool engine_argmax = config.sampler.greedy() && config.sampler.repetition_penalty == 1.0f;
  int32_t argmax = -1;
  auto run = [&](std::span<const int32_t> tokens) {
    if (engine_argmax)
      argmax = engine_.forward_argmax(tokens);
    else
      engine_.forward(tokens, logits_.data());
  };
  const auto new_tokens = prompt.subspan(common);
  run(new_tokens);
  cached_.insert(cached_.end(), new_tokens.begin(), new_tokens.end());
  stats.prefill_tokens = int(new_tokens.size());
  const double prefill_s = seconds_since(start);
  stats.prefill_tokens_per_s = prefill_s > 0 ? stats.prefill_tokens / prefill_s : 0;

  Clock::time_point first_token_time = start;
  int decode_steps = 0;  // forward calls after the first sampled token
  for (int i = 0; i < config.max_new_tokens; ++i) {
    const int32_t next = engine_argmax ? argmax : sampler.sample(logits_, history);
    if (i == 0) {
      first_token_time = Clock::now();
      stats.time_to_first_token_s = std::chrono::duration<double>(first_token_time - start).count();
    }
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) {
      stats.stop_reason = StopReason::EndOfSequence;
      break;
    }
    on_token(next);
    ++stats.generated_tokens;
    history.push_back(next);
    if (i + 1 == config.max_new_tokens) break;  // no need to run the last token
    if (cancelled()) {
      stats.stop_reason = StopReason::Cancelled;
      break;
    }
    if (engine_.position() >= engine_.context_length()) {
      stats.stop_reason = StopReason::ContextFull;
      break;
    }
    const int32_t one[1] = {next};
    run(one);
    cached_.push_back(next);
    ++decode_steps;
  }
  if (decode_steps > 0) {
    const double decode_s = seconds_since(first_token_time);
    stats.decode_tokens_per_s = decode_s > 0 ? decode_steps / decode_s : 0;
  }
  stats.total_s = seconds_since(start);
  return stats;
}

}  // namespace aqlm
