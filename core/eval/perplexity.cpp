#include "core/eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/common/error.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "kernels/cpu/activation.h"

namespace aqlm {
namespace {
int window_length(const Engine& engine, const PerplexityOptions& options) {
  return options.seqlen > 0 ? options.seqlen : std::min(engine.context_length(), 4096);
}
}  // namespace

PerplexityResult evaluate_perplexity(Engine& engine, std::span<const int32_t> ids, const PerplexityOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int seqlen = window_length(engine, options);
  AQLM_CHECK(seqlen >= 2, "perplexity: window length ", seqlen, " must be at least 2 tokens");
  AQLM_CHECK(seqlen <= engine.context_length(), "perplexity: window length ", seqlen, " exceeds the engine's ",
             engine.context_length(), "-token context");
  AQLM_CHECK(options.max_windows >= 0, "perplexity: max windows ", options.max_windows, " must not be negative");
  AQLM_CHECK(options.chunk >= 1, "perplexity: chunk ", options.chunk, " must be at least 1");
  const int64_t available = int64_t(ids.size()) / seqlen;
  AQLM_CHECK(available >= 1, "perplexity: the text has ", ids.size(), " tokens but one window needs ", seqlen,
             " (use a longer text or a shorter window)");
  const int windows = int(options.max_windows > 0 ? std::min<int64_t>(available, options.max_windows) : available);

  const int64_t vocab = engine.config().vocab_size;
  const int chunk = std::min(options.chunk, seqlen);
  std::vector<float> logits(size_t(chunk) * size_t(vocab));
  PerplexityResult result;
  result.seqlen = seqlen;
  result.text_tokens = int64_t(ids.size());
  double nll_sum = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  for (int w = 0; w < windows && !result.cancelled; ++w) {
    const int32_t* window = ids.data() + int64_t(w) * seqlen;
    engine.rewind(0);
    double window_nll = 0;
    for (int t0 = 0; t0 < seqlen; t0 += chunk) {
      if (options.cancel && options.cancel->load(std::memory_order_relaxed)) {
        result.cancelled = true;
        break;
      }
      const int m = std::min(chunk, seqlen - t0);
      engine.forward(std::span<const int32_t>(window + t0, size_t(m)), logits.data(), true);
      // Row t predicts token t0 + t + 1 of the window; the window's last row predicts nothing.
      for (int t = 0; t < m && t0 + t + 1 < seqlen; ++t) {
        const float* row = logits.data() + size_t(t) * size_t(vocab);
        window_nll += cpu::logsumexp(row, vocab) - double(row[window[t0 + t + 1]]);
      }
    }
    if (result.cancelled) break;
    nll_sum += window_nll;
    ++result.windows;
    if (options.progress) {
      PerplexityProgress p;
      p.windows_done = result.windows;
      p.windows_total = windows;
      const double s = elapsed();
      const double predicted = double(result.windows) * (seqlen - 1);
      p.tokens_per_s = s > 0 ? predicted / s : 0;
      p.eta_s = s / result.windows * (windows - result.windows);
      p.nll_so_far = nll_sum / predicted;
      options.progress(p);
    }
  }
  engine.rewind(0);
  result.tokens = int64_t(result.windows) * (seqlen - 1);
  result.nll = result.tokens > 0 ? nll_sum / double(result.tokens) : 0;
  result.ppl = std::exp(result.nll);
  result.seconds = elapsed();
  return result;
}

PerplexityResult evaluate_perplexity(Engine& engine, const Tokenizer& tokenizer, std::string_view text,
                                     const PerplexityOptions& options) {
  AQLM_CHECK(!text.empty(), "perplexity: the text is empty (one window needs ", window_length(engine, options), " tokens)");
  const std::vector<int32_t> ids = tokenizer.encode(text, true);
  return evaluate_perplexity(engine, ids, options);
}

}  // namespace aqlm
