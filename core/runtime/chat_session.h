#pragma once
// A conversation with a chat model: its messages, rendered with the model's own chat template
// (ChatML when it has none), and replies generated on an Engine with prefix reuse (a new turn
// runs only the tokens the KV cache does not hold yet). The one chat logic of the product:
// `aqlm-cli chat` and the studio's Chat tab both drive a ChatSession.
//
// Threads: one thread at a time (it drives the engine); `cancel` may be set from any thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/runtime/generator.h"
#include "core/text/chat_template.h"

namespace aqlm {

struct Model;
class Engine;
class Tokenizer;

struct ChatReply {
  std::string text;              // the assistant message as streamed (what came before a Stop, if cancelled)
  std::vector<int32_t> token_ids;  // the generated ids (the stop token not included)
  GenerationStats stats;
};

// Receives the reply's text piece by piece; pieces never split a UTF-8 character.
using ChatTextCallback = std::function<void(std::string_view piece)>;

class ChatSession {
 public:
  // `model` (with its tokenizer) and `engine` must outlive the session, which owns the engine's
  // KV cache from now on. Throws Error when the model has no tokenizer.
  ChatSession(const Model& model, Engine& engine);

  // Sent first as a "system" message; empty: none (the template may then insert its default).
  void set_system_prompt(std::string system_prompt);
  const std::string& system_prompt() const { return system_prompt_; }
  // The turns after the system prompt, e.g. a conversation reloaded from the run database.
  // Roles are "user" and "assistant"; a "system" message here is refused (use set_system_prompt).
  void set_messages(std::vector<ChatMessage> messages);
  const std::vector<ChatMessage>& messages() const { return messages_; }
  void clear() { messages_.clear(); }  // the system prompt stays

  // What the template receives: the system prompt (if any) and the messages.
  std::vector<ChatMessage> template_messages() const;
  // The template's text for the conversation; add_generation_prompt appends the assistant's header.
  std::string render(bool add_generation_prompt = true) const;
  // The ids of a rendered prompt: special tokens in the text ("<|im_start|>") become their ids,
  // and BOS is put first when the tokenizer adds one and the text does not already start with it.
  std::vector<int32_t> encode_prompt(const std::string& rendered) const;
  // One line when the model's template could not be used and ChatML was, else empty.
  const std::string& template_warning() const { return template_warning_; }

  // Appends the user's message and generates the reply (as reply() does). Throws Error for an
  // empty message; on any Error the messages are as they were before the call.
  ChatReply send(std::string user_text, const GenerationConfig& config, const ChatTextCallback& on_text = {},
                 const std::atomic<bool>* cancel = nullptr);
  // Generates the assistant's reply to the conversation as it stands (it must end with a user
  // message) and appends it, also when cancelled (the text streamed so far). Stops at the
  // model's end-of-sequence and end-of-turn tokens unless config.stop_token_ids says otherwise.
  // Reply k of the session samples with seed config.sampler.seed + k, so a Regenerate draws
  // another answer while a replay with the same seed reproduces the same replies.
  ChatReply reply(const GenerationConfig& config, const ChatTextCallback& on_text = {},
                  const std::atomic<bool>* cancel = nullptr);
  // Drops the last assistant reply and generates another. Throws Error when there is none.
  ChatReply regenerate(const GenerationConfig& config, const ChatTextCallback& on_text = {},
                       const std::atomic<bool>* cancel = nullptr);

  // The ids that end a reply: the model's EOS ids and the template's end-of-turn tokens.
  const std::vector<int32_t>& stop_token_ids() const { return stop_ids_; }
  int context_length() const;
  // Tokens the KV cache holds after the last reply (its prompt and what it generated).
  int context_used() const { return int(generator_.cached_tokens().size()); }
  // Forgets the KV cache (the next reply runs the whole conversation again).
  void reset_cache() { generator_.reset(); }

 private:
  const Model& model_;
  const Tokenizer& tokenizer_;
  Engine& engine_;
  Generator generator_;
  ChatTemplateContext template_context_;
  std::vector<int32_t> stop_ids_;
  std::string system_prompt_;
  std::vector<ChatMessage> messages_;
  mutable std::string template_warning_;
  uint64_t replies_generated_ = 0;
};

// The ids that end a chat reply for `model`: its config's and tokenizer's EOS, and the
// end-of-turn tokens of the common templates that its vocabulary has (<|im_end|>, <|eot_id|>, ...).
std::vector<int32_t> chat_stop_token_ids(const Model& model);

}  // namespace aqlm
