// ChatSession: rendering with the model's template against jinja2 (the text room's fixtures),
// SmolLM2 chat turns against a float64 numpy greedy reference (scripts/reference/
// chat_session_reference.py), and the session's bookkeeping on stories260K (streaming, prefix
// reuse, seeds per reply, Regenerate, Stop, errors).
#include "core/runtime/chat_session.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

using nlohmann::json;

json read_fixture(const std::string& relative) { return json::parse(read_text_file(test::source_path(relative))); }

std::vector<ChatMessage> to_messages(const json& conversation) {
  std::vector<ChatMessage> messages;
  for (const json& m : conversation) messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return messages;
}

// Splits a fixture conversation into the session's system prompt and turns. False when a
// system message is not first (a session cannot express that).
bool split_system(std::vector<ChatMessage> all, std::string& system, std::vector<ChatMessage>& turns) {
  system.clear();
  if (!all.empty() && all.front().role == "system") {
    system = all.front().content;
    all.erase(all.begin());
  }
  for (const ChatMessage& m : all) {
    if (m.role == "system") return false;
  }
  turns = std::move(all);
  return true;
}

GenerationConfig greedy(int max_new_tokens) {
  GenerationConfig config;
  config.max_new_tokens = max_new_tokens;
  config.sampler.temperature = 0;
  return config;
}

std::string expect_error(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no aqlm::Error was thrown";
  return {};
}

// ----------------------------------------------------------------------------- SmolLM2

EngineOptions small_context() {
  EngineOptions options;
  options.context_length = 256;  // the two turns need ~80 tokens; a small KV cache keeps the test light
  return options;
}

TEST(ChatSessionSmolLM2, RendersLikeJinja2WithTheModelsOwnTemplate) {
  AQLM_REQUIRE_SMOLLM2(path);
  const auto model = load_model(path.string());
  const std::string dir = "tests/fixtures/text/templates/";
  ASSERT_EQ(model->chat_template, read_text_file(test::source_path(dir + "smollm2.jinja")));
  auto engine = create_engine(*model, small_context());
  ChatSession session(*model, *engine);
  const json expected = read_fixture(dir + "expected.json");
  int checked = 0;
  for (const json& c : expected.at("cases")) {
    if (c.at("template") != "smollm2.jinja" || !c.contains("output")) continue;
    // The session passes the tokenizer's own BOS/EOS text; the fixture must have used the same.
    ASSERT_EQ(c.at("bos_token"), "<|im_start|>");
    ASSERT_EQ(c.at("eos_token"), "<|im_end|>");
    std::string system;
    std::vector<ChatMessage> turns;
    if (!split_system(to_messages(expected.at("conversations").at(c.at("conversation").get<std::string>())), system,
                      turns))
      continue;
    session.set_system_prompt(system);
    session.set_messages(turns);
    EXPECT_EQ(session.render(c.at("add_generation_prompt").get<bool>()), c.at("output").get<std::string>())
        << c.at("conversation") << " add_generation_prompt=" << c.at("add_generation_prompt");
    EXPECT_EQ(session.template_warning(), "");
    ++checked;
  }
  EXPECT_GE(checked, 14);  // 9 conversations x 2, less those with a system message after the first
}

TEST(ChatSessionSmolLM2, TurnsEndAtTheEndOfTurnTokenLikeTheFloat64Reference) {
  AQLM_REQUIRE_SMOLLM2(path);
  const json ref = read_fixture("tests/fixtures/runtime/chat_session_smollm2.json");
  const auto model = load_model(path.string());
  auto engine = create_engine(*model, small_context());
  ChatSession session(*model, *engine);
  session.set_system_prompt(ref.at("system").get<std::string>());
  const int32_t end_of_turn = ref.at("stop_id").get<int32_t>();
  ASSERT_EQ(model->tokenizer->token_id("<|im_end|>"), end_of_turn);
  const auto& stops = session.stop_token_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), end_of_turn), stops.end());

  std::vector<int32_t> cached_before;
  for (const json& turn : ref.at("turns")) {
    const auto prompt_ids = turn.at("prompt_ids").get<std::vector<int32_t>>();
    const auto reply_ids = turn.at("reply_ids").get<std::vector<int32_t>>();
    // Every greedy choice of the reference beats the runner-up by >= 0.9 logits, far above the
    // float32 engine's error (~1e-5 of the logits' range, a few 1e-4 absolute): the replies
    // must agree token for token.
    for (double gap : turn.at("logit_gaps").get<std::vector<double>>()) ASSERT_GT(gap, 0.5);
    ASSERT_EQ(turn.at("stop"), "eos");

    std::string streamed;
    int pieces = 0;
    const ChatReply reply = session.send(turn.at("user").get<std::string>(), greedy(ref.at("max_new_tokens")),
                                         [&](std::string_view piece) {
                                           streamed += piece;
                                           ++pieces;
                                         });
    EXPECT_EQ(reply.stats.stop_reason, StopReason::EndOfSequence);
    EXPECT_EQ(reply.text, turn.at("reply").get<std::string>());
    EXPECT_FALSE(reply.text.empty());
    EXPECT_EQ(streamed, reply.text);
    EXPECT_EQ(pieces, int(reply_ids.size()));  // one piece per token: ASCII text never waits for a byte
    EXPECT_EQ(reply.token_ids, reply_ids);
    EXPECT_EQ(reply.stats.generated_tokens, int(reply_ids.size()));
    EXPECT_EQ(reply.stats.prompt_tokens, int(prompt_ids.size()));
    // The KV cache now holds the prompt the reference tokenized and the reply it chose.
    std::vector<int32_t> expected_cache = prompt_ids;
    expected_cache.insert(expected_cache.end(), reply_ids.begin(), reply_ids.end());
    EXPECT_EQ(session.context_used(), int(expected_cache.size()));
    EXPECT_EQ(engine->position(), int(expected_cache.size()));
    // Prefix reuse: the second turn runs only what follows the tokens shared with the cache.
    size_t common = 0;
    while (common < cached_before.size() && common < prompt_ids.size() && cached_before[common] == prompt_ids[common])
      ++common;
    EXPECT_EQ(reply.stats.prefill_tokens, int(prompt_ids.size() - common));
    if (!cached_before.empty()) EXPECT_GT(common, prompt_ids.size() / 2);
    ASSERT_EQ(session.messages().back().role, "assistant");
    EXPECT_EQ(session.messages().back().content, reply.text);
    // The prompt the session built is the reference's (jinja2 + tokenizers): render it again
    // without the reply (set_messages leaves the KV cache alone).
    const std::vector<ChatMessage> conversation = session.messages();
    session.set_messages({conversation.begin(), conversation.end() - 1});
    EXPECT_EQ(session.render(), turn.at("prompt").get<std::string>());
    EXPECT_EQ(session.encode_prompt(session.render()), prompt_ids);
    session.set_messages(conversation);
    cached_before = expected_cache;
  }
}

// ----------------------------------------------------------------------------- stories260K

struct Stories {
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
};

Stories load_stories(const std::filesystem::path& path, int context = 0) {
  Stories s;
  s.model = load_model(path.string());  // finds tok512.bin beside the model
  EngineOptions options;
  options.context_length = context;
  s.engine = create_engine(*s.model, options);
  return s;
}

TEST(ChatSession, WithoutATemplateRendersChatMLAndPutsBosFirst) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto s = load_stories(path);
  ASSERT_TRUE(s.model->chat_template.empty());
  ChatSession session(*s.model, *s.engine);
  session.set_system_prompt("You are a terse assistant.");
  session.set_messages({{"user", "What is 2+2?"}});
  // jinja2's rendering of the ChatML template for this conversation (expected.json, chatml.jinja).
  const json expected = read_fixture("tests/fixtures/text/templates/expected.json");
  std::string reference;
  for (const json& c : expected.at("cases")) {
    if (c.at("template") == "chatml.jinja" && c.at("conversation") == "system_user" && c.at("add_generation_prompt"))
      reference = c.at("output");
  }
  ASSERT_FALSE(reference.empty());
  const std::string text = session.render();
  EXPECT_EQ(text, reference);
  EXPECT_EQ(session.template_warning(), "the model has no chat template; using ChatML");
  // llama2.c models are trained with BOS first; ChatML does not write it, so the session adds it.
  const std::vector<int32_t> ids = session.encode_prompt(text);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);
  std::vector<int32_t> without_bos = s.model->tokenizer->encode(text, false, true);
  EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()), without_bos);
  EXPECT_EQ(session.stop_token_ids(), std::vector<int32_t>{2});  // llama2.c EOS; no end-of-turn tokens in 512 pieces
}

TEST(ChatSession, RepliesStreamAndReuseTheCachedPrefix) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto s = load_stories(path);
  ChatSession session(*s.model, *s.engine);
  std::vector<std::string> pieces;
  const ChatReply first = session.send("Tell me a story.", greedy(12), [&](std::string_view p) { pieces.emplace_back(p); });
  EXPECT_GT(pieces.size(), 1u);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, first.text);
  ASSERT_EQ(session.messages().size(), 2u);
  EXPECT_EQ(session.messages()[1].role, "assistant");
  EXPECT_EQ(session.messages()[1].content, first.text);
  EXPECT_EQ(first.stats.prefill_tokens, first.stats.prompt_tokens);  // nothing cached yet
  ASSERT_EQ(first.stats.stop_reason, StopReason::MaxTokens);
  ASSERT_EQ(first.token_ids.size(), 12u);
  EXPECT_EQ(s.model->tokenizer->decode(first.token_ids), first.text);
  // The cache holds the prompt and the reply but its last token (never run: nothing followed it).
  session.set_messages({{"user", "Tell me a story."}});
  std::vector<int32_t> cached = session.encode_prompt(session.render());
  session.set_messages({{"user", "Tell me a story."}, {"assistant", first.text}});
  cached.insert(cached.end(), first.token_ids.begin(), first.token_ids.end() - 1);
  EXPECT_EQ(session.context_used(), int(cached.size()));

  const ChatReply second = session.send("And then?", greedy(8));
  // Only the tokens after the prefix shared with the cache run (the reply is re-tokenized from
  // its text, so the shared part may end inside it).
  session.set_messages({session.messages().begin(), session.messages().end() - 1});
  const std::vector<int32_t> prompt = session.encode_prompt(session.render());
  size_t common = 0;
  while (common < cached.size() && cached[common] == prompt[common]) ++common;
  EXPECT_GT(common, cached.size() - first.token_ids.size());  // at least the first prompt was reused
  EXPECT_EQ(second.stats.prompt_tokens, int(prompt.size()));
  EXPECT_EQ(second.stats.prefill_tokens, int(prompt.size() - common));
}

TEST(ChatSession, EachReplyHasItsOwnSeedSoRegenerateDrawsAnotherAnswer) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  GenerationConfig sampled;
  sampled.max_new_tokens = 24;
  sampled.sampler.temperature = 1.0f;
  sampled.sampler.seed = 1234;

  auto a = load_stories(path);
  ChatSession session(*a.model, *a.engine);
  const std::string first = session.send("Once upon a time", sampled).text;
  const std::string regenerated = session.regenerate(sampled).text;
  ASSERT_EQ(session.messages().size(), 2u);  // the reply was replaced, not added
  EXPECT_EQ(session.messages()[1].content, regenerated);
  EXPECT_NE(regenerated, first);  // 24 tokens at temperature 1 from two seeds: equal only by a fluke

  // Reply k samples with seed + k: a fresh session started at seed + 1 gives the regenerated reply.
  auto b = load_stories(path);
  ChatSession replay(*b.model, *b.engine);
  GenerationConfig next = sampled;
  next.sampler.seed = 1235;
  EXPECT_EQ(replay.send("Once upon a time", next).text, regenerated);
  // And the same seed reproduces the first reply.
  auto c = load_stories(path);
  ChatSession again(*c.model, *c.engine);
  EXPECT_EQ(again.send("Once upon a time", sampled).text, first);
}

TEST(ChatSession, StopKeepsWhatWasStreamed) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto s = load_stories(path);
  ChatSession session(*s.model, *s.engine);
  std::atomic<bool> cancel{false};
  int pieces = 0;
  const ChatReply reply = session.send("Tell me a story.", greedy(60), [&](std::string_view) {
    if (++pieces == 3) cancel = true;
  }, &cancel);
  EXPECT_EQ(reply.stats.stop_reason, StopReason::Cancelled);
  EXPECT_EQ(reply.stats.generated_tokens, 3);
  EXPECT_FALSE(reply.text.empty());
  ASSERT_EQ(session.messages().size(), 2u);
  EXPECT_EQ(session.messages()[1].content, reply.text);
}

TEST(ChatSession, BadRequestsSayWhyAndLeaveTheConversationAsItWas) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto s = load_stories(path, /*context=*/64);
  ChatSession session(*s.model, *s.engine);
  EXPECT_EQ(expect_error([&] { session.send(" \n\t", greedy(4)); }), "chat: the message is empty");
  EXPECT_EQ(expect_error([&] { session.reply(greedy(4)); }),
            "chat: nothing to reply to (the conversation must end with a user message)");
  EXPECT_EQ(expect_error([&] { session.regenerate(greedy(4)); }),
            "chat: there is no reply to regenerate (the conversation does not end with an assistant message)");
  EXPECT_EQ(expect_error([&] { session.set_messages({{"user", "hi"}, {"system", "be brief"}}); }),
            "chat: message 2 has role 'system'; messages are 'user' or 'assistant' (the system prompt is set on its own)");
  EXPECT_TRUE(session.messages().empty());

  // A prompt longer than the 64-token context.
  const std::string long_text(400, 'a');
  const std::string error = expect_error([&] { session.send(long_text, greedy(4)); });
  EXPECT_NE(error.find("tokens but the context holds 64"), std::string::npos) << error;
  EXPECT_TRUE(session.messages().empty());

  // Regenerate that fails keeps the old reply.
  session.set_messages({{"user", "hi"}, {"assistant", "hello"}});
  GenerationConfig bad = greedy(4);
  bad.sampler.top_p = 2.0f;
  EXPECT_EQ(expect_error([&] { session.regenerate(bad); }), "top-p 2 must be in (0, 1]");
  ASSERT_EQ(session.messages().size(), 2u);
  EXPECT_EQ(session.messages()[1].content, "hello");
}

TEST(ChatSession, AModelWithoutATokenizerIsRefused) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  LoadOptions options;
  options.load_tokenizer = false;
  const auto model = load_model(path.string(), options);
  auto engine = create_engine(*model);
  EXPECT_EQ(expect_error([&] { ChatSession session(*model, *engine); }),
            path.string() + ": the model has no tokenizer, which chat needs (for a llama2.c model put its tokenizer "
                            ".bin beside it)");
}

}  // namespace
}  // namespace aqlm
