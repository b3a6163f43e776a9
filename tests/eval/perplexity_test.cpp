#include "core/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/common/error.h"
#include "core/runtime/engine.h"
#include "tests/runtime/runtime_test_models.h"

namespace aqlm {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Perplexity, OneWindowMatchesTheFloat64Reference) {
  for (const char* name : {"tiny_mistral", "tiny_qwen2", "tiny_llama3"}) {
    const auto model = test::load_test_weights(test::tiny_model_dir(name));
    const auto ref = test::read_tiny_reference(name);
    auto engine = create_engine(*model);
    PerplexityOptions o;
    o.seqlen = int(ref.ids.size());
    o.chunk = 5;  // several forward calls per window
    const auto r = evaluate_perplexity(*engine, ref.ids, o);
    EXPECT_EQ(r.windows, 1);
    EXPECT_EQ(r.tokens, int64_t(ref.ids.size()) - 1);
    // fp32 logits are within ~1e-6 relative of the reference; the NLL inherits that.
    EXPECT_NEAR(r.nll, ref.mean_nll, 1e-5 * std::max(1.0, ref.mean_nll)) << name;
    EXPECT_NEAR(r.ppl, std::exp(ref.mean_nll), 1e-5 * std::exp(ref.mean_nll)) << name;
  }
}

std::vector<int32_t> pseudo_text(size_t n, int vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = int32_t((i * 7919 + i * i * 31) % size_t(vocab));
  ids[0] = 1;
  return ids;
}

TEST(Perplexity, WindowsAreNonOverlappingAndTheTailIsDropped) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  const auto ids = pseudo_text(3 * 40 + 17, 512);
  PerplexityOptions o;
  o.seqlen = 40;
  const auto all = evaluate_perplexity(*engine, ids, o);
  EXPECT_EQ(all.windows, 3);
  EXPECT_EQ(all.tokens, 3 * 39);
  EXPECT_EQ(all.text_tokens, int64_t(ids.size()));
  EXPECT_EQ(all.seqlen, 40);
  // The mean over windows equals the mean of each window evaluated alone.
  double sum = 0;
  for (int w = 0; w < 3; ++w) {
    const std::vector<int32_t> one(ids.begin() + w * 40, ids.begin() + (w + 1) * 40);
    sum += evaluate_perplexity(*engine, one, o).nll;
  }
  EXPECT_NEAR(all.nll, sum / 3, 1e-6);
  o.max_windows = 2;
  const auto two = evaluate_perplexity(*engine, ids, o);
  EXPECT_EQ(two.windows, 2);
  EXPECT_EQ(two.tokens, 2 * 39);
  EXPECT_EQ(engine->position(), 0);  // the cache is left empty
}

TEST(Perplexity, DefaultWindowIsTheEngineContext) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  EngineOptions eo;
  eo.context_length = 64;
  auto engine = create_engine(*model, eo);
  const auto r = evaluate_perplexity(*engine, pseudo_text(130, 512));
  EXPECT_EQ(r.seqlen, 64);
  EXPECT_EQ(r.windows, 2);
}

TEST(Perplexity, ReportsProgressAndHonoursCancel) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  const auto ids = pseudo_text(4 * 30, 512);
  std::atomic<bool> cancel{false};
  std::vector<PerplexityProgress> seen;
  PerplexityOptions o;
  o.seqlen = 30;
  o.chunk = 7;
  o.cancel = &cancel;
  o.progress = [&](const PerplexityProgress& p) {
    seen.push_back(p);
    if (p.windows_done == 2) cancel = true;
  };
  const auto r = evaluate_perplexity(*engine, ids, o);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].windows_done, 1);
  EXPECT_EQ(seen[1].windows_done, 2);
  EXPECT_EQ(seen[1].windows_total, 4);
  EXPECT_GT(seen[1].tokens_per_s, 0);
  EXPECT_GT(seen[0].eta_s, 0);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.windows, 2);
  EXPECT_EQ(r.tokens, 2 * 29);
  EXPECT_NEAR(r.nll, seen[1].nll_so_far, 1e-12);
}

TEST(Perplexity, TooShortOrBadSettingsSayWhatIsNeeded) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  PerplexityOptions o;
  o.seqlen = 100;
  const auto ids = pseudo_text(99, 512);
  EXPECT_EQ(error_of([&] { evaluate_perplexity(*engine, ids, o); }),
            "perplexity: the text has 99 tokens but one window needs 100 (use a longer text or a shorter window)");
  EXPECT_EQ(error_of([&] { evaluate_perplexity(*engine, std::vector<int32_t>{}, o); }),
            "perplexity: the text has 0 tokens but one window needs 100 (use a longer text or a shorter window)");
  o.seqlen = 1;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(*engine, ids, o); }),
            "perplexity: window length 1 must be at least 2 tokens");
  o.seqlen = 1000;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(*engine, ids, o); }),
            "perplexity: window length 1000 exceeds the engine's 512-token context");
  o.seqlen = 10;
  o.max_windows = -1;
  EXPECT_EQ(error_of([&] { evaluate_perplexity(*engine, ids, o); }), "perplexity: max windows -1 must not be negative");
}

}  // namespace
}  // namespace aqlm
