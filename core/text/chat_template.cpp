#include "core/text/chat_template.h"

#include "core/common/error.h"
#include "core/text/jinja_template.h"

namespace aqlm {

namespace {

// The variables Hugging Face's apply_chat_template passes: messages, tools=None,
// documents=None, add_generation_prompt and the special tokens.
jinja::Dict chat_variables(const std::vector<ChatMessage>& messages, const ChatTemplateContext& context) {
  std::vector<jinja::Value> list;
  list.reserve(messages.size());
  for (const ChatMessage& m : messages) {
    jinja::Dict message;
    message.set("role", jinja::Value(m.role));
    message.set("content", jinja::Value(m.content));
    list.emplace_back(std::move(message));
  }
  jinja::Dict variables;
  variables.set("messages", jinja::Value(std::move(list)));
  variables.set("tools", jinja::Value::none());
  variables.set("documents", jinja::Value::none());
  variables.set("add_generation_prompt", jinja::Value(context.add_generation_prompt));
  variables.set("bos_token", jinja::Value(context.bos_token));
  variables.set("eos_token", jinja::Value(context.eos_token));
  return variables;
}

}  // namespace

struct ChatTemplate::Impl {
  jinja::Template parsed;
};

ChatTemplate::ChatTemplate(const std::string& source)
    : impl_(std::make_unique<Impl>(Impl{jinja::Template(source, "chat template")})) {}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, const ChatTemplateContext& context) const {
  return impl_->parsed.render(chat_variables(messages, context));
}

const std::string& ChatTemplate::chatml_source() {
  // Plain ChatML, as models that ship it write it (llava-v1.6-34b, Nous-Hermes-2).
  static const std::string source =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  return source;
}

std::string render_chat(const std::string& source, const std::vector<ChatMessage>& messages,
                        const ChatTemplateContext& context, std::string* warning) {
  if (warning) warning->clear();
  if (!source.empty()) {
    try {
      return ChatTemplate(source).render(messages, context);
    } catch (const Error& e) {
      if (warning) *warning = str("the model's chat template cannot be used (", e.what(), "); using ChatML instead");
    }
  } else if (warning) {
    *warning = "the model has no chat template; using ChatML";
  }
  static const ChatTemplate chatml(ChatTemplate::chatml_source());
  return chatml.render(messages, context);
}

}  // namespace aqlm
