#pragma once
// Renders a model's own Jinja chat_template with an interpreter for the subset those
// templates use; ChatML is the fallback when a model has no template or it cannot be rendered.
#include <memory>
#include <string>
#include <vector>

namespace aqlm {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct ChatTemplateContext {
  std::string bos_token;
  std::string eos_token;
  bool add_generation_prompt = true;
};

class ChatTemplate {
 public:
  // Parses the template; throws Error (with line and column) when it cannot.
  explicit ChatTemplate(const std::string& source);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // Throws Error when rendering fails (raise_exception, a type error, ...).
  std::string render(const std::vector<ChatMessage>& messages, const ChatTemplateContext& context) const;

  static const std::string& chatml_source();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Renders with the model's template, or ChatML when `source` is empty or fails; `warning`
// (if given) receives a one-line explanation when the fallback was used.
std::string render_chat(const std::string& source, const std::vector<ChatMessage>& messages,
                        const ChatTemplateContext& context, std::string* warning = nullptr);

}  // namespace aqlm
