// Real model chat templates rendered by our interpreter must equal Python jinja2 with
// Hugging Face's exact settings, byte for byte (fixtures: scripts/reference/chat_template_reference.py).
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/error.h"
#include "core/model/gguf.h"
#include "core/text/chat_template.h"
#include "core/text/jinja_template.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

using nlohmann::ordered_json;

std::string read_fixture(const std::string& name) {
  const auto path = test::source_path("tests/fixtures/text/templates/" + name);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

const ordered_json& expected() {
  static const ordered_json doc = ordered_json::parse(read_fixture("expected.json"));
  return doc;
}

std::vector<ChatMessage> conversation(const std::string& name) {
  std::vector<ChatMessage> messages;
  for (const auto& m : expected()["conversations"][name])
    messages.push_back(ChatMessage{m["role"].get<std::string>(), m["content"].get<std::string>()});
  return messages;
}

// The instant the reference script freezes strftime_now at (2024-07-26 09:05:03).
std::tm fixed_now() {
  std::tm t{};
  t.tm_year = 2024 - 1900;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 9;
  t.tm_min = 5;
  t.tm_sec = 3;
  t.tm_wday = 5;
  t.tm_yday = 207;
  return t;
}

// Renders like ChatTemplate::render but with the reference's frozen clock (for strftime_now).
std::string render_with_fixed_clock(const std::string& source, const std::vector<ChatMessage>& messages,
                                    const ChatTemplateContext& context) {
  std::vector<jinja::Value> list;
  for (const auto& m : messages) {
    jinja::Dict d;
    d.set("role", jinja::Value(m.role));
    d.set("content", jinja::Value(m.content));
    list.emplace_back(std::move(d));
  }
  jinja::Dict variables;
  variables.set("messages", jinja::Value(std::move(list)));
  variables.set("tools", jinja::Value::none());
  variables.set("documents", jinja::Value::none());
  variables.set("add_generation_prompt", jinja::Value(context.add_generation_prompt));
  variables.set("bos_token", jinja::Value(context.bos_token));
  variables.set("eos_token", jinja::Value(context.eos_token));
  jinja::RenderOptions options;
  options.now = fixed_now;
  return jinja::Template(source, "chat template").render(variables, options);
}

class ModelTemplate : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelTemplate, MatchesJinja2ForEveryConversation) {
  const std::string file = GetParam();
  const std::string source = read_fixture(file);
  const bool uses_clock = source.find("strftime_now") != std::string::npos;
  int cases = 0;
  for (const auto& c : expected()["cases"]) {
    if (c["template"] != file) continue;
    ++cases;
    SCOPED_TRACE(c["conversation"].get<std::string>() + (c["add_generation_prompt"].get<bool>() ? " +gen" : " -gen"));
    const ChatTemplateContext context{c["bos_token"], c["eos_token"], c["add_generation_prompt"]};
    const auto messages = conversation(c["conversation"]);
    auto render = [&] {
      return uses_clock ? render_with_fixed_clock(source, messages, context)
                        : ChatTemplate(source).render(messages, context);
    };
    if (c.contains("output")) {
      EXPECT_EQ(render(), c["output"].get<std::string>());
      continue;
    }
    // jinja2 failed: we must fail too, with the template's own message for raise_exception
    // and jinja2's wording for an undefined value.
    try {
      const std::string out = render();
      ADD_FAILURE() << "expected an error (" << c["message"] << "), got output: " << out;
    } catch (const Error& e) {
      const std::string kind = c["error"];
      if (kind == "raise" || kind == "undefined") {
        EXPECT_NE(std::string(e.what()).find(c["message"].get<std::string>()), std::string::npos) << e.what();
      }
      EXPECT_EQ(std::string(e.what()).rfind("chat template: line ", 0), 0u) << e.what();
    }
  }
  // Every template meets every conversation with and without the generation prompt.
  EXPECT_EQ(cases, static_cast<int>(expected()["conversations"].size()) * 2);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelTemplate,
                         ::testing::Values("smollm2.jinja", "chatml.jinja", "llama2_chat.jinja", "llama3_instruct.jinja",
                                           "llama3.1_instruct.jinja", "mistral_v0.1_instruct.jinja",
                                           "mistral_v1_system.jinja", "mistral_v0.3_instruct.jinja",
                                           "mistral_nemo_instruct.jinja", "qwen2_instruct.jinja",
                                           "qwen2.5_instruct.jinja", "zephyr.jinja", "gemma2_it.jinja",
                                           "gemma3_it.jinja", "smollm3.jinja", "deepseek_r1.jinja"),
                         [](const auto& info) {
                           std::string name = info.param.substr(0, info.param.find(".jinja"));
                           for (char& ch : name)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(ModelTemplate, FixtureCoversOnlyTheListedTemplates) {
  // A template added to the reference script must be added to the list above.
  std::set<std::string> in_fixture;
  for (const auto& c : expected()["cases"]) in_fixture.insert(c["template"].get<std::string>());
  EXPECT_EQ(in_fixture.size(), 16u);
}

TEST(ChatTemplate, SmolLM2TemplateFromTheGgufRendersTheDefaultSystemPrompt) {
  AQLM_REQUIRE_SMOLLM2(gguf_path);
  const std::string source = GgufFile(gguf_path.string()).get_string("tokenizer.chat_template");
  EXPECT_EQ(source, read_fixture("smollm2.jinja"));
  const ChatTemplate tmpl(source);
  EXPECT_EQ(tmpl.render({{"user", "Hi"}}, {"<|im_start|>", "<|im_end|>", true}),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ChatmlSourceIsTheFixtureChatml) {
  EXPECT_EQ(ChatTemplate::chatml_source(), read_fixture("chatml.jinja"));
  const ChatTemplate chatml(ChatTemplate::chatml_source());
  EXPECT_EQ(chatml.render({{"system", "S"}, {"user", "U"}}, {"", "", false}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
}

TEST(ChatTemplate, RaiseExceptionCarriesTheTemplateMessageAndLine) {
  const ChatTemplate tmpl("{% for m in messages %}\n{% if m.role == 'system' %}\n"
                          "{{ raise_exception('System role not supported') }}\n{% endif %}{% endfor %}");
  try {
    tmpl.render({{"system", "x"}}, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "chat template: line 3: System role not supported");
  }
  EXPECT_EQ(tmpl.render({{"user", "x"}}, {}), "");
}

TEST(ChatTemplate, ErrorsAreOneLineEvenForMultiLineMessages) {
  try {
    ChatTemplate("{{ raise_exception('first line\nsecond line') }}").render({}, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "chat template: line 1: first line second line");
  }
  EXPECT_THROW(ChatTemplate("{{ 'x' * 1000000000000 }}").render({}, {}), Error);  // not an allocation failure
}

TEST(ChatTemplate, SyntaxErrorNamesLineAndColumn) {
  try {
    ChatTemplate("line one\nline two {{ 1 + }}");
    FAIL() << "no error";
  } catch (const Error& e) {
    // "line two " is 9 characters, so "{{" starts at column 10 and "}}" at column 17.
    EXPECT_STREQ(e.what(), "chat template: line 2, column 17: unexpected '}}'");
  }
  try {
    ChatTemplate("{% for m in messages %}\n  {{ m.content }}\n");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2, column 18: unexpected end of template: the 'for' block opened "
                                         "at line 1 needs '{% endfor %}'"),
              std::string::npos)
        << e.what();
  }
}

TEST(ChatTemplate, UnknownFilterIsAClearErrorAtParseTime) {
  try {
    ChatTemplate("{{ messages | shuffle }}");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "chat template: line 1, column 15: unknown filter 'shuffle'");
  }
  try {
    ChatTemplate("{{ x is prime }}");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "chat template: line 1, column 9: unknown test 'prime'");
  }
}

TEST(ChatTemplate, UndefinedAttributeErrorsButUndefinedPrintsEmpty) {
  const ChatTemplate prints("[{{ missing }}][{{ messages[0].nope }}]");
  EXPECT_EQ(prints.render({{"user", "x"}}, {}), "[][]");
  const ChatTemplate attribute_of_undefined("{{ missing.field }}");
  EXPECT_THROW(
      {
        try {
          attribute_of_undefined.render({}, {});
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "chat template: line 1: 'missing' is undefined");
          throw;
        }
      },
      Error);
}

TEST(ChatTemplate, ToolsAndDocumentsAreNoneAsInHuggingFace) {
  const ChatTemplate tmpl("{{ tools is none }}{{ documents is none }}{{ tools is defined }}");
  EXPECT_EQ(tmpl.render({}, {}), "TrueTrueTrue");
}

TEST(ChatTemplate, StrftimeNowUsesTheClock) {
  const ChatTemplate tmpl("{{ strftime_now('%Y') }}");
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  EXPECT_EQ(tmpl.render({}, {}), std::to_string(local.tm_year + 1900));
}

TEST(ChatTemplate, MovesKeepTheParsedTemplate) {
  ChatTemplate a("{{ bos_token }}{{ messages | length }}");
  ChatTemplate b(std::move(a));
  EXPECT_EQ(b.render({{"user", "1"}, {"assistant", "2"}}, {"<s>", "", false}), "<s>2");
  ChatTemplate c("x");
  c = std::move(b);
  EXPECT_EQ(c.render({}, {"<b>", "", false}), "<b>0");
}

TEST(RenderChat, UsesTheModelTemplateWithoutWarning) {
  std::string warning = "stale";
  const std::string out = render_chat(read_fixture("llama3_instruct.jinja"), {{"user", "Hi"}},
                                      {"<|begin_of_text|>", "<|eot_id|>", true}, &warning);
  EXPECT_EQ(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(warning, "");
}

TEST(RenderChat, FallsBackToChatmlWithAOneLineWarning) {
  const std::vector<ChatMessage> messages{{"user", "Hi"}};
  const ChatTemplateContext context{"<s>", "</s>", true};
  const std::string chatml = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";

  std::string warning;
  EXPECT_EQ(render_chat("", messages, context, &warning), chatml);
  EXPECT_EQ(warning, "the model has no chat template; using ChatML");

  EXPECT_EQ(render_chat("{% if %}", messages, context, &warning), chatml);
  EXPECT_EQ(warning,
            "the model's chat template cannot be used (chat template: line 1, column 7: expected an expression, got "
            "'%}'); using ChatML instead");
  EXPECT_EQ(warning.find('\n'), std::string::npos);

  EXPECT_EQ(render_chat("{{ raise_exception('Only system') }}", messages, context, &warning), chatml);
  EXPECT_NE(warning.find("Only system"), std::string::npos) << warning;

  EXPECT_EQ(render_chat("", messages, context), chatml);  // the warning is optional
}

}  // namespace
}  // namespace aqlm
