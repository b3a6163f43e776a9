#pragma once
// Splits a Jinja2 template into tokens with Hugging Face's whitespace rules: trim_blocks
// (the newline after a block or comment tag goes), lstrip_blocks (indentation before a block
// or comment tag goes), '-' strips all whitespace on that side, '+' keeps it; newlines are
// normalised to "\n" and one trailing newline is dropped, as jinja2 does by default.
#include <string>
#include <string_view>
#include <vector>

namespace aqlm::jinja {

struct SourcePos {
  int line = 1;
  int column = 1;
};

// Throws Error "<template_name>: line L, column C: <message>".
[[noreturn]] void syntax_error(const std::string& template_name, SourcePos pos, const std::string& message);

enum class TokenType {
  Text,           // literal output
  VariableBegin,  // {{
  VariableEnd,    // }}
  BlockBegin,     // {%
  BlockEnd,       // %}
  Name,
  String,         // value is the unescaped text
  Integer,        // value is the digits without '_'
  Float,
  Operator,
  End,            // end of template
};

struct Token {
  TokenType type;
  std::string value;
  SourcePos pos;
};

std::vector<Token> tokenize(std::string_view source, const std::string& template_name);

// Human-readable description of a token for error messages: "'endfor'", "end of template".
std::string describe(const Token& token);

}  // namespace aqlm::jinja
