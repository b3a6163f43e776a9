#include "core/runtime/chat_session.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"

namespace aqlm {

namespace {

const Tokenizer& tokenizer_of(const Model& model) {
  AQLM_CHECK(model.tokenizer, model.source_path,
             ": the model has no tokenizer, which chat needs (for a llama2.c model put its tokenizer .bin beside it)");
  return *model.tokenizer;
}

std::string special_text(const Tokenizer& tokenizer, int32_t id) {
  return id >= 0 && id < tokenizer.vocab_size() ? tokenizer.token_bytes(id) : std::string();
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

}  // namespace

std::vector<int32_t> chat_stop_token_ids(const Model& model) {
  std::vector<int32_t> ids(model.config.eos_token_ids.begin(), model.config.eos_token_ids.end());
  if (model.tokenizer) {
    const Tokenizer& tokenizer = *model.tokenizer;
    if (tokenizer.eos_id() >= 0) ids.push_back(tokenizer.eos_id());
    // End-of-turn tokens of ChatML, Llama-3, Phi-3, Gemma, and GPT-2-style end of text.
    for (const char* name : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"}) {
      if (auto id = tokenizer.token_id(name)) ids.push_back(*id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

ChatSession::ChatSession(const Model& model, Engine& engine)
    : model_(model), tokenizer_(tokenizer_of(model)), engine_(engine), generator_(engine) {
  template_context_.bos_token = special_text(tokenizer_, tokenizer_.bos_id());
  template_context_.eos_token = special_text(tokenizer_, tokenizer_.eos_id());
  stop_ids_ = chat_stop_token_ids(model);
}

void ChatSession::set_system_prompt(std::string system_prompt) { system_prompt_ = std::move(system_prompt); }

void ChatSession::set_messages(std::vector<ChatMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    AQLM_CHECK(role == "user" || role == "assistant", "chat: message ", i + 1, " has role '", role,
               "'; messages are 'user' or 'assistant' (the system prompt is set on its own)");
  }
  messages_ = std::move(messages);
}

std::vector<ChatMessage> ChatSession::template_messages() const {
  std::vector<ChatMessage> all;
  all.reserve(messages_.size() + 1);
  if (!system_prompt_.empty()) all.push_back({"system", system_prompt_});
  all.insert(all.end(), messages_.begin(), messages_.end());
  return all;
}

std::string ChatSession::render(bool add_generation_prompt) const {
  ChatTemplateContext context = template_context_;
  context.add_generation_prompt = add_generation_prompt;
  std::string warning;
  std::string text = render_chat(model_.chat_template, template_messages(), context, &warning);
  template_warning_ = std::move(warning);
  return text;
}

std::vector<int32_t> ChatSession::encode_prompt(const std::string& rendered) const {
  std::vector<int32_t> ids = tokenizer_.encode(rendered, /*add_special=*/false, /*parse_special=*/true);
  // A template that writes {{ bos_token }} itself already has it; ChatML (the fallback) does not,
  // and a model trained with BOS (llama2.c, Llama-2) reads badly without it.
  const int32_t bos = tokenizer_.bos_id();
  if (tokenizer_.spec().add_bos && bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
  return ids;
}

int ChatSession::context_length() const { return engine_.context_length(); }

ChatReply ChatSession::send(std::string user_text, const GenerationConfig& config, const ChatTextCallback& on_text,
                            const std::atomic<bool>* cancel) {
  AQLM_CHECK(!is_blank(user_text), "chat: the message is empty");
  messages_.push_back({"user", std::move(user_text)});
  try {
    return reply(config, on_text, cancel);
  } catch (...) {
    messages_.pop_back();
    throw;
  }
}

ChatReply ChatSession::reply(const GenerationConfig& config, const ChatTextCallback& on_text,
                             const std::atomic<bool>* cancel) {
  AQLM_CHECK(!messages_.empty() && messages_.back().role == "user",
             "chat: nothing to reply to (the conversation must end with a user message)");
  const std::vector<int32_t> prompt = encode_prompt(render(/*add_generation_prompt=*/true));
  GenerationConfig turn = config;
  if (turn.stop_token_ids.empty()) turn.stop_token_ids = stop_ids_;
  turn.sampler.seed = config.sampler.seed + replies_generated_;

  ChatReply result;
  StreamDecoder decoder(tokenizer_);
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    result.text += piece;
    if (on_text) on_text(piece);
  };
  result.stats = generator_.generate(prompt, turn, [&](int32_t id) {
    result.token_ids.push_back(id);
    emit(decoder.push(id));
  }, cancel);
  emit(decoder.flush());
  ++replies_generated_;
  messages_.push_back({"assistant", result.text});
  return result;
}

ChatReply ChatSession::regenerate(const GenerationConfig& config, const ChatTextCallback& on_text,
                                  const std::atomic<bool>* cancel) {
  AQLM_CHECK(!messages_.empty() && messages_.back().role == "assistant",
             "chat: there is no reply to regenerate (the conversation does not end with an assistant message)");
  ChatMessage previous = std::move(messages_.back());
  messages_.pop_back();
  try {
    return reply(config, on_text, cancel);
  } catch (...) {
    messages_.push_back(std::move(previous));
    throw;
  }
}

}  // namespace aqlm
