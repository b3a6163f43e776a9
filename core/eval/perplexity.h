#pragma once
// Perplexity as the GPTQ / AQLM papers measure it: the text is tokenized once, cut into
// non-overlapping windows of `seqlen` tokens (the tail shorter than a window is dropped),
// each window runs from an empty cache, and the mean negative log-likelihood is taken over
// every predicted token (all but the first of each window).
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace aqlm {

class Engine;
class Tokenizer;

struct PerplexityProgress {
  int windows_done = 0;
  int windows_total = 0;
  double tokens_per_s = 0;  // predicted tokens per second so far
  double eta_s = 0;
  double nll_so_far = 0;    // mean NLL of the windows done
};

struct PerplexityOptions {
  int seqlen = 0;       // 0: the engine's context length, at most 4096
  int max_windows = 0;  // evaluate only the first K windows; 0 = all
  int chunk = 256;      // tokens per forward call (bounds the logits buffer: chunk x vocab floats)
  std::function<void(const PerplexityProgress&)> progress;  // after each window
  const std::atomic<bool>* cancel = nullptr;                // checked between chunks
};

struct PerplexityResult {
  double nll = 0;          // mean negative log-likelihood (nats) per predicted token
  double ppl = 0;          // exp(nll)
  int64_t tokens = 0;      // predicted tokens: windows * (seqlen - 1)
  int64_t text_tokens = 0; // tokens of the whole text
  int windows = 0;         // windows evaluated
  int seqlen = 0;
  double seconds = 0;
  bool cancelled = false;  // stopped early: the figures cover the windows finished
};

// Throws Error when the text has fewer than seqlen tokens (saying how many are needed),
// seqlen is below 2 or exceeds the engine's context.
PerplexityResult evaluate_perplexity(Engine& engine, std::span<const int32_t> ids, const PerplexityOptions& options = {});
// Tokenizes `text` once (with the tokenizer's BOS/EOS settings) and evaluates it.
PerplexityResult evaluate_perplexity(Engine& engine, const Tokenizer& tokenizer, std::string_view text,
                                     const PerplexityOptions& options = {});

}  // namespace aqlm
