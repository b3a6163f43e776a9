// One small template per interpreter feature (whitespace control, literals, operators,
// scoping, filters, tests, methods, errors), each compared with Python jinja2 under Hugging
// Face's settings (fixtures: scripts/reference/chat_template_reference.py -> snippets.json).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/error.h"
#include "core/text/jinja_template.h"
#include "core/text/jinja_text.h"
#include "core/text/jinja_value.h"
#include "tests/support/test_paths.h"

namespace aqlm::jinja {
namespace {

using nlohmann::ordered_json;

const ordered_json& snippets() {
  static const ordered_json doc = [] {
    std::ifstream in(test::source_path("tests/fixtures/text/templates/snippets.json"));
    std::stringstream buffer;
    buffer << in.rdbuf();
    return ordered_json::parse(buffer.str());
  }();
  return doc;
}

std::vector<std::string> snippet_names() {
  std::vector<std::string> names;
  for (const auto& c : snippets()["cases"]) names.push_back(c["name"]);
  return names;
}

const ordered_json& snippet(const std::string& name) {
  for (const auto& c : snippets()["cases"])
    if (c["name"] == name) return c;
  throw std::runtime_error("no snippet " + name);
}

std::tm fixed_now() {  // the reference's frozen clock: Friday 2024-07-26 09:05:03
  std::tm t{};
  t.tm_year = 124;
  t.tm_mon = 6;
  t.tm_mday = 26;
  t.tm_hour = 9;
  t.tm_min = 5;
  t.tm_sec = 3;
  t.tm_wday = 5;
  t.tm_yday = 207;
  return t;
}

class Snippet : public ::testing::TestWithParam<std::string> {};

TEST_P(Snippet, MatchesJinja2) {
  const ordered_json& c = snippet(GetParam());
  SCOPED_TRACE(c["source"].get<std::string>());
  const Value variables = from_json(c["variables"]);
  RenderOptions options;
  options.now = fixed_now;
  const std::string kind = c.value("error", "");
  if (kind.empty()) {
    EXPECT_EQ(Template(c["source"].get<std::string>(), "snippet").render(variables.as_dict(), options),
              c["output"].get<std::string>());
    return;
  }
  try {
    const std::string out = Template(c["source"].get<std::string>(), "snippet").render(variables.as_dict(), options);
    FAIL() << "jinja2 failed (" << c["message"] << ") but we rendered: " << out;
  } catch (const Error& e) {
    const std::string message = e.what();
    if (kind == "syntax") {
      // jinja2 reports the line; we report the same line and a column.
      EXPECT_NE(message.find(str("snippet: line ", c["line"].get<int>(), ", column ")), std::string::npos) << message;
    } else {
      EXPECT_EQ(message.rfind("snippet: line ", 0), 0u) << message;
      if (kind == "raise" || kind == "undefined")
        EXPECT_NE(message.find(c["message"].get<std::string>()), std::string::npos) << message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Snippet, ::testing::ValuesIn(snippet_names()),
                         [](const auto& info) { return info.param; });

TEST(Snippet, FixtureHasEveryFeatureCase) {
  // Guards against an accidentally truncated fixture silently passing.
  EXPECT_GE(snippets()["cases"].size(), 100u);
}

TEST(RandomTemplates, MatchJinja2) {
  // Seeded random templates (whitespace control, nesting, filters, tests, loops, namespaces)
  // rendered by jinja2 over fixed variables: 300 outputs to equal, 100 failures to reproduce.
  std::ifstream in(test::source_path("tests/fixtures/text/templates/random.json"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const ordered_json doc = ordered_json::parse(buffer.str());
  const Value variables = from_json(doc["variables"]);
  int outputs = 0, errors = 0;
  for (const auto& c : doc["cases"]) {
    const std::string source = c["source"];
    SCOPED_TRACE(source);
    if (c.contains("output")) {
      ++outputs;
      try {
        EXPECT_EQ(Template(source, "random").render(variables.as_dict()), c["output"].get<std::string>());
      } catch (const Error& e) {
        ADD_FAILURE() << "jinja2 rendered, we failed: " << e.what();
      }
    } else {
      ++errors;
      EXPECT_THROW(Template(source, "random").render(variables.as_dict()), Error) << "jinja2: " << c["message"];
    }
  }
  EXPECT_EQ(outputs, 300);
  EXPECT_EQ(errors, 100);

  // Line breaks (\r\n, \r, U+2028), Unicode spaces and every whitespace marker around tags.
  int whitespace = 0;
  for (const auto& c : doc["whitespace_cases"]) {
    const std::string source = c["source"];
    SCOPED_TRACE(source);
    ++whitespace;
    if (c.contains("output")) {
      EXPECT_EQ(Template(source, "random").render({}), c["output"].get<std::string>());
    } else {
      EXPECT_THROW(Template(source, "random").render({}), Error);
    }
  }
  EXPECT_EQ(whitespace, 300);
}

// ---- pieces checked against values computed by hand ----

TEST(JinjaValue, FloatsPrintLikePythonRepr) {
  EXPECT_EQ(format_float(1.0), "1.0");
  EXPECT_EQ(format_float(-0.0), "-0.0");
  EXPECT_EQ(format_float(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(format_float(1e16), "1e+16");
  EXPECT_EQ(format_float(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(format_float(1e-4), "0.0001");
  EXPECT_EQ(format_float(1e-5), "1e-05");
  EXPECT_EQ(format_float(1.5e300), "1.5e+300");
  EXPECT_EQ(format_float(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(format_float(std::nan("")), "nan");
  EXPECT_EQ(format_float(-INFINITY), "-inf");
}

TEST(JinjaValue, JsonFollowsPythonJsonDumps) {
  Dict d;
  d.set("b", Value(std::vector<Value>{Value(1), Value(2.0), Value::none()}));
  d.set("a", Value("é\u2028\x01"));
  JsonOptions compact;
  EXPECT_EQ(to_json(Value(d), compact), "{\"b\": [1, 2.0, null], \"a\": \"é\u2028\\u0001\"}");
  JsonOptions ascii;
  ascii.ensure_ascii = true;
  ascii.sort_keys = true;
  EXPECT_EQ(to_json(Value(d), ascii), "{\"a\": \"\\u00e9\\u2028\\u0001\", \"b\": [1, 2.0, null]}");
  EXPECT_THROW(to_json(Value::undefined("x"), compact), Error);
}

TEST(JinjaText, StringHelpersFollowPython) {
  EXPECT_EQ(text::length("h\xC3\xA9llo\xF0\x9F\x99\x82"), 6u);
  EXPECT_EQ(text::strip("\xC2\xA0 x \xE3\x80\x80", std::nullopt, true, true), "x");  // NBSP and ideographic space
  const auto parts = text::split("  a  b ", std::nullopt, 1, false);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1], "b ");
  EXPECT_EQ(text::repr("it's"), "\"it's\"");
  EXPECT_EQ(text::repr("a\x01\xC2\xA0"), "'a\\x01\\xa0'");
  EXPECT_EQ(*text::parse_int(" -1_000 ", 10), -1000);
  EXPECT_FALSE(text::parse_int("1__0", 10).has_value());
  EXPECT_FALSE(text::parse_float("0x10").has_value());
  EXPECT_EQ(*text::parse_float("1e3"), 1000.0);
}

TEST(JinjaTemplate, DoesNotReferenceTheCallersSource) {
  // The template keeps its own copy of the source text: the caller's buffer may go away.
  std::string source = "{{ greeting }}, {{ name|upper }}!";
  const Template t(source, "t");
  source.assign(source.size(), 'x');
  Dict vars;
  vars.set("greeting", Value("Hello"));
  vars.set("name", Value("ada"));
  EXPECT_EQ(t.render(vars), "Hello, ADA!");
}

TEST(JinjaTemplate, DeepMacroRecursionIsAnErrorNotACrash) {
  const Template t("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "t");
  try {
    t.render({});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recursed more than"), std::string::npos) << e.what();
  }
}

TEST(JinjaTemplate, AbsurdNestingIsAnErrorNotAStackOverflow) {
  // A model file can carry any template; none of these may crash the studio.
  const std::string parens = std::string(100000, '(') + "1" + std::string(100000, ')');
  EXPECT_THROW(Template("{{ " + parens + " }}", "t"), Error);
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_THROW(Template(chain + " }}", "t"), Error);
  std::string blocks;
  for (int i = 0; i < 100000; ++i) blocks += "{% if true %}";
  EXPECT_THROW(Template(blocks, "t"), Error);
  EXPECT_THROW(Template("{{ " + std::string(100000, '-') + "1 }}", "t"), Error);
  EXPECT_THROW(Template("{{ " + std::string(100000, '[') + " }}", "t"), Error);
  // Realistic depth is fine: 50 nested parentheses and a 50-term sum.
  std::string sum = "1";
  for (int i = 0; i < 49; ++i) sum += " + 1";
  EXPECT_EQ(Template("{{ " + std::string(50, '(') + sum + std::string(50, ')') + " }}", "t").render({}), "50");
}

TEST(JinjaTemplate, UnsupportedTagsAreClearErrors) {
  for (const char* source : {"{% call m() %}x{% endcall %}", "{% include 'other.jinja' %}", "{% extends 'base' %}",
                             "{% for x in xs recursive %}{% endfor %}", "{% do xs.append(1) %}", "{% break %}",
                             "{{ f(*args) }}"}) {
    SCOPED_TRACE(source);
    try {
      Template(source, "t");
      ADD_FAILURE() << "parsed";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("t: line 1, column ", 0), 0u) << e.what();
    }
  }
}

TEST(JinjaTemplate, HugeRangeIsRefused) {
  const Template t("{% for i in range(1000000) %}{% endfor %}", "t");
  EXPECT_THROW(t.render({}), Error);
}

}  // namespace
}  // namespace aqlm::jinja
