#include "core/runtime/generator.h"

#include <gtest/gtest.h>

#include "core/common/error.h"
#include "core/runtime/engine.h"
#include "tests/runtime/runtime_test_models.h"

namespace aqlm {
namespace {

GenerationConfig greedy(int max_new) {
  GenerationConfig g;
  g.max_new_tokens = max_new;
  g.sampler.temperature = 0;
  return g;
}

std::vector<int32_t> generate(Generator& gen, const std::vector<int32_t>& prompt, const GenerationConfig& config,
                              GenerationStats* stats = nullptr, const std::atomic<bool>* cancel = nullptr) {
  std::vector<int32_t> out;
  const auto s = gen.generate(prompt, config, [&](int32_t id) { out.push_back(id); }, cancel);
  if (stats) *stats = s;
  return out;
}

TEST(Generator, GreedyFromBosReproducesTheGoldenTokens) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  GenerationStats stats;
  const auto out = generate(gen, {1}, greedy(80), &stats);
  ASSERT_EQ(out.size(), 80u);  // the golden continuation has no EOS
  const auto& golden = test::stories_golden_first_ids();  // BOS + the first 29 generated ids
  for (size_t i = 1; i < golden.size(); ++i) EXPECT_EQ(out[i - 1], golden[i]) << "token " << i;
  EXPECT_EQ(stats.stop_reason, StopReason::MaxTokens);
  EXPECT_EQ(stats.prompt_tokens, 1);
  EXPECT_EQ(stats.prefill_tokens, 1);
  EXPECT_EQ(stats.generated_tokens, 80);
  EXPECT_GT(stats.time_to_first_token_s, 0);
  EXPECT_GT(stats.decode_tokens_per_s, 0);
  EXPECT_GE(stats.total_s, stats.time_to_first_token_s);
  EXPECT_EQ(engine->position(), 80);  // BOS + 79 generated tokens run; the 80th was not needed
}

TEST(Generator, StopsAtAStopTokenWithoutStreamingIt) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  auto config = greedy(50);
  config.stop_token_ids = {test::stories_golden_first_ids()[6]};  // the 6th generated token
  GenerationStats stats;
  const auto out = generate(gen, {1}, config, &stats);
  EXPECT_EQ(out.size(), 5u);
  EXPECT_EQ(stats.stop_reason, StopReason::EndOfSequence);
  EXPECT_STREQ(stop_reason_name(stats.stop_reason), "eos");
}

TEST(Generator, DefaultStopTokensAreTheModelsEos) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto model = test::load_test_weights(path);
  model->config.eos_token_ids = {test::stories_golden_first_ids()[3]};
  auto engine = create_engine(*model);
  Generator gen(*engine);
  GenerationStats stats;
  EXPECT_EQ(generate(gen, {1}, greedy(50), &stats).size(), 2u);
  EXPECT_EQ(stats.stop_reason, StopReason::EndOfSequence);
}

TEST(Generator, CancelFlagStopsTheStream) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  std::atomic<bool> cancel{false};
  std::vector<int32_t> out;
  const auto stats = gen.generate(
      std::vector<int32_t>{1}, greedy(50),
      [&](int32_t id) {
        out.push_back(id);
        if (out.size() == 3) cancel = true;
      },
      &cancel);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(stats.stop_reason, StopReason::Cancelled);
  // Cancelled before it starts: nothing is generated.
  std::atomic<bool> already{true};
  GenerationStats s2;
  EXPECT_TRUE(generate(gen, {1, 403}, greedy(5), &s2, &already).empty());
  EXPECT_EQ(s2.stop_reason, StopReason::Cancelled);
}

TEST(Generator, StopsWhenTheContextIsFull) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  EngineOptions o;
  o.context_length = 12;
  auto engine = create_engine(*model, o);
  Generator gen(*engine);
  GenerationStats stats;
  const auto out = generate(gen, {1, 403, 407, 261, 378}, greedy(100), &stats);
  // 5 prompt tokens + 7 generated fill 12 positions; the 8th token is sampled from the last logits.
  EXPECT_EQ(out.size(), 8u);
  EXPECT_EQ(stats.stop_reason, StopReason::ContextFull);
}

TEST(Generator, AFollowUpPromptReusesTheCachedPrefix) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  std::vector<int32_t> prompt = {1, 403, 407};
  const auto first = generate(gen, prompt, greedy(6));
  // Next turn: the conversation so far plus new text.
  std::vector<int32_t> next = prompt;
  next.insert(next.end(), first.begin(), first.end());
  next.insert(next.end(), {261, 378});
  GenerationStats stats;
  const auto second = generate(gen, next, greedy(10), &stats);
  EXPECT_EQ(stats.prompt_tokens, int(next.size()));
  EXPECT_EQ(stats.prefill_tokens, int(next.size()) - 8);  // 3 prompt + 5 run generated tokens were cached
  // The same as a fresh generator on the whole prompt.
  auto fresh_engine = create_engine(*model);
  Generator fresh(*fresh_engine);
  EXPECT_EQ(generate(fresh, next, greedy(10)), second);
  // A different prompt rewinds to the common prefix.
  const auto third = generate(gen, {1, 500}, greedy(4), &stats);
  EXPECT_EQ(stats.prefill_tokens, 1);
  Generator fresh2(*fresh_engine);
  fresh2.reset();
  EXPECT_EQ(generate(fresh2, {1, 500}, greedy(4)), third);
}

TEST(Generator, SeededSamplingIsReproducible) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  auto engine = create_engine(*model);
  Generator gen(*engine);
  GenerationConfig c;
  c.max_new_tokens = 30;
  c.sampler.temperature = 1.0f;
  c.sampler.top_p = 0.9f;
  c.sampler.seed = 1234;
  const auto a = generate(gen, {1}, c);
  const auto b = generate(gen, {1}, c);
  EXPECT_EQ(a, b);
  c.sampler.seed = 99;
  EXPECT_NE(generate(gen, {1}, c), a);
}

TEST(Generator, RejectsBadRequests) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = test::load_test_weights(path);
  EngineOptions o;
  o.context_length = 4;
  auto engine = create_engine(*model, o);
  Generator gen(*engine);
  auto message = [&](const std::vector<int32_t>& prompt, const GenerationConfig& c) {
    try {
      generate(gen, prompt, c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(message({}, greedy(3)), "generate: the prompt has no tokens");
  EXPECT_EQ(message({1, 2, 3, 4, 5}, greedy(3)), "the prompt has 5 tokens but the context holds 4");
  auto bad = greedy(3);
  bad.sampler.temperature = -0.5f;
  EXPECT_EQ(message({1}, bad), "temperature -0.5 must be >= 0");
}

}  // namespace
}  // namespace aqlm
