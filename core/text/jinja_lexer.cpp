#include "core/text/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "core/common/error.h"
#include "core/text/jinja_text.h"

namespace aqlm::jinja {

void syntax_error(const std::string& template_name, SourcePos pos, const std::string& message) {
  fail(template_name, ": line ", pos.line, ", column ", pos.column, ": ", message);
}

std::string describe(const Token& token) {
  switch (token.type) {
    case TokenType::End: return "end of template";
    case TokenType::VariableEnd: return "'}}'";
    case TokenType::BlockEnd: return "'%}'";
    case TokenType::VariableBegin: return "'{{'";
    case TokenType::BlockBegin: return "'{%'";
    case TokenType::Text: return "text";
    case TokenType::String: return "string " + text::repr(token.value);
    default: return "'" + token.value + "'";
  }
}

namespace {

// jinja2 normalises every newline to "\n" and drops one trailing newline (keep_trailing_newline=False).
std::string normalise_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& name) : src_(normalise_newlines(source)), name_(name) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        emit(TokenType::Text, src_.substr(pos_), pos_);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      emit_text_before_tag(tag, kind, sign);
      const size_t inner = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        lex_comment(tag, inner);
      } else if (kind == '%' && lex_raw(tag, inner)) {
        // raw block handled
      } else {
        lex_tag(kind, tag, inner);
      }
    }
    tokens_.push_back(Token{TokenType::End, "", position(src_.size())});
    return std::move(tokens_);
  }

 private:
  // Line and column (in code points) of a byte offset. Tokens come in source order, so a
  // cursor makes this linear overall; an error may look back and pays for its line only.
  SourcePos position(size_t offset) {
    if (offset < cursor_offset_) {
      auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
      const size_t line_start = *(it - 1);
      const auto column = text::length(std::string_view(src_).substr(line_start, offset - line_start));
      return SourcePos{static_cast<int>(it - line_starts_.begin()), static_cast<int>(column) + 1};
    }
    for (; cursor_offset_ < offset && cursor_offset_ < src_.size(); ++cursor_offset_) {
      const char c = src_[cursor_offset_];
      if (c == '\n') {
        ++cursor_.line;
        cursor_.column = 1;
      } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
        ++cursor_.column;
      }
    }
    return cursor_;
  }

  [[noreturn]] void error(size_t offset, const std::string& message) { syntax_error(name_, position(offset), message); }

  void emit(TokenType type, std::string value, size_t offset) {
    tokens_.push_back(Token{type, std::move(value), position(offset)});
  }

  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos && i + 1 < src_.size(); i = src_.find('{', i + 1)) {
      const char next = src_[i + 1];
      if (next == '{' || next == '%' || next == '#') return i;
    }
    return std::string::npos;
  }

  // The text before a tag, after '-' stripping or lstrip_blocks.
  void emit_text_before_tag(size_t tag, char kind, char sign) {
    std::string text = src_.substr(pos_, tag - pos_);
    if (sign == '-') {
      text = text::strip(text, std::nullopt, false, true);
    } else if (sign != '+' && kind != '{') {
      const size_t line_begin = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
      const std::string_view tail = std::string_view(text).substr(line_begin);
      const bool only_space = !tail.empty() && text::strip(tail, std::nullopt, true, true).empty();
      if ((line_begin > 0 || line_starting_) && only_space) text.resize(line_begin);
    }
    if (!text.empty()) emit(TokenType::Text, std::move(text), pos_);
    pos_ = tag;
  }

  // Skips Unicode whitespace (Python's \s), code point by code point.
  size_t skip_whitespace(size_t p) const {
    while (p < src_.size()) {
      size_t len = 1;
      while (p + len < src_.size() && (static_cast<unsigned char>(src_[p + len]) & 0xC0) == 0x80) ++len;
      const std::vector<char32_t> cp = text::decode(std::string_view(src_).substr(p, len));
      if (cp.size() != 1 || !text::is_space(cp[0])) break;
      p += len;
    }
    return p;
  }

  // Byte length of a non-ASCII word character (a Unicode letter or digit) at p, else 0.
  size_t word_length(size_t p) const {
    if (static_cast<unsigned char>(src_[p]) < 0x80) return 0;
    size_t len = 1;
    while (p + len < src_.size() && len < 4 && (static_cast<unsigned char>(src_[p + len]) & 0xC0) == 0x80) ++len;
    const std::vector<char32_t> cp = text::decode(std::string_view(src_).substr(p, len));
    return cp.size() == 1 && text::is_word(cp[0]) ? len : 0;
  }

  // After an end marker: '-' eats all whitespace, '+' nothing, plain eats one newline (trim_blocks).
  size_t after_end_marker(size_t after, char sign, bool trim_newline) {
    if (sign == '-') {
      after = skip_whitespace(after);
    } else if (sign != '+' && trim_newline && after < src_.size() && src_[after] == '\n') {
      ++after;
    }
    line_starting_ = after > 0 && src_[after - 1] == '\n';
    return after;
  }

  void lex_comment(size_t tag, size_t inner) {
    if (inner == src_.size()) {  // jinja2's lexer stops quietly at a "{#" that ends the template
      pos_ = inner;
      return;
    }
    const size_t close = src_.find("#}", inner);
    if (close == std::string::npos) error(tag, "missing '#}' to close the comment");
    const char sign = close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    pos_ = after_end_marker(close + 2, sign, true);
  }

  // {% raw %}...{% endraw %}: the body is output verbatim. Returns false when the tag is not raw.
  bool lex_raw(size_t tag, size_t inner) {
    size_t p = skip_whitespace(inner);
    if (src_.compare(p, 3, "raw") != 0) return false;
    p = skip_whitespace(p + 3);
    size_t body;
    if (src_.compare(p, 3, "-%}") == 0) {
      body = after_end_marker(p + 3, '-', false);
    } else if (src_.compare(p, 2, "%}") == 0) {
      body = p + 2;
      line_starting_ = false;
    } else {
      return false;
    }
    for (size_t at = src_.find("{%", body); at != std::string::npos; at = src_.find("{%", at + 2)) {
      size_t q = at + 2;
      const char sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : 0;
      if (sign) ++q;
      q = skip_whitespace(q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q = skip_whitespace(q + 6);
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      pos_ = body;
      emit_text_before_tag(at, '%', sign);
      pos_ = after_end_marker(q + 2, end_sign, true);
      return true;
    }
    error(tag, "missing '{% endraw %}' to close the raw block");
  }

  void lex_tag(char kind, size_t tag, size_t inner) {
    emit(kind == '{' ? TokenType::VariableBegin : TokenType::BlockBegin, kind == '{' ? "{{" : "{%", tag);
    const char close = kind == '{' ? '}' : '%';
    std::vector<char> brackets;
    size_t p = inner;
    while (true) {
      p = skip_whitespace(p);
      if (p >= src_.size())
        error(tag, std::string("missing '") + close + "}' to close the tag opened here");
      if (brackets.empty()) {
        // End markers: "-}}" / "}}" for expressions; "+%}" / "-%}" / "%}" for statements.
        const char sign = (src_[p] == '-' || (src_[p] == '+' && kind == '%')) ? src_[p] : 0;
        const size_t marker = p + (sign ? 1 : 0);
        if (marker + 1 < src_.size() && src_[marker] == close && src_[marker + 1] == '}') {
          emit(kind == '{' ? TokenType::VariableEnd : TokenType::BlockEnd, kind == '{' ? "}}" : "%}", p);
          pos_ = after_end_marker(marker + 2, sign, kind == '%');
          return;
        }
      }
      p = lex_token(p, brackets);
    }
  }

  // One token inside a tag; returns the position after it.
  size_t lex_token(size_t p, std::vector<char>& brackets) {
    const char c = src_[p];
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(p);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || word_length(p) > 0) {
      size_t q = p;
      while (q < src_.size()) {
        const unsigned char b = static_cast<unsigned char>(src_[q]);
        const size_t len = b < 0x80 ? ((std::isalnum(b) || b == '_') ? 1 : 0) : word_length(q);
        if (len == 0) break;
        q += len;
      }
      emit(TokenType::Name, src_.substr(p, q - p), p);
      return q;
    }
    if (c == '\'' || c == '"') return lex_string(p);
    static const char* two_char[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two_char) {
      if (src_.compare(p, 2, op) == 0) {
        emit(TokenType::Operator, op, p);
        return p + 2;
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
      error(p, std::string("unexpected character '") + c + "'");
    if (c == '(' || c == '[' || c == '{') {
      brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error(p, std::string("unexpected '") + c + "'");
      if (brackets.back() != c) error(p, std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
      brackets.pop_back();
    }
    emit(TokenType::Operator, std::string(1, c), p);
    return p + 1;
  }

  size_t lex_number(size_t p) {
    auto digits = [&](size_t q, auto accept) {
      while (q < src_.size() && (accept(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() && accept(src_[q + 1])))) ++q;
      return q;
    };
    auto dec = [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) != 0; };
    std::string value;
    if (src_[p] == '0' && p + 1 < src_.size() && std::string_view("xXoObB").find(src_[p + 1]) != std::string_view::npos) {
      const char base = static_cast<char>(std::tolower(src_[p + 1]));
      auto accept = [base](char ch) {
        return base == 'x' ? std::isxdigit(static_cast<unsigned char>(ch)) != 0
                           : base == 'o' ? (ch >= '0' && ch <= '7') : (ch == '0' || ch == '1');
      };
      const size_t first = p + 2 + (p + 2 < src_.size() && src_[p + 2] == '_' ? 1 : 0);
      const size_t q = digits(first, accept);
      std::string raw = src_.substr(p, q - p);
      raw.erase(std::remove(raw.begin(), raw.end(), '_'), raw.end());
      const auto v = text::parse_int(raw, 0);
      if (!v) error(p, "invalid number '" + src_.substr(p, q - p) + "'");
      emit(TokenType::Integer, std::to_string(*v), p);
      return q;
    }
    size_t q = digits(p, dec);
    bool is_float = false;
    // A float needs digits after the point ("1." is the integer 1 followed by '.'); none after a '.' (x.0.1).
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    if (!after_dot && q + 1 < src_.size() && src_[q] == '.' && dec(src_[q + 1])) {
      q = digits(q + 1, dec);
      is_float = true;
    }
    if (!after_dot && q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t e = q + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && dec(src_[e])) {
        q = digits(e, dec);
        is_float = true;
      }
    }
    value = src_.substr(p, q - p);
    value.erase(std::remove(value.begin(), value.end(), '_'), value.end());
    emit(is_float ? TokenType::Float : TokenType::Integer, value, p);
    return q;
  }

  size_t lex_string(size_t p) {
    const char quote = src_[p];
    std::string value;
    size_t q = p + 1;
    while (true) {
      if (q >= src_.size()) error(p, "unterminated string literal");
      const char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) error(p, "unterminated string literal");
      q = unescape(q, value);
    }
    emit(TokenType::String, std::move(value), p);
    return q + 1;
  }

  // Python's unicode-escape decoding of one escape at src_[q] == '\\'; returns the position after it.
  size_t unescape(size_t q, std::string& out) {
    const char e = src_[q + 1];
    switch (e) {
      case '\n': return q + 2;  // line continuation
      case '\\': out += '\\'; return q + 2;
      case '\'': out += '\''; return q + 2;
      case '"': out += '"'; return q + 2;
      case 'a': out += '\a'; return q + 2;
      case 'b': out += '\b'; return q + 2;
      case 'f': out += '\f'; return q + 2;
      case 'n': out += '\n'; return q + 2;
      case 'r': out += '\r'; return q + 2;
      case 't': out += '\t'; return q + 2;
      case 'v': out += '\v'; return q + 2;
      default: break;
    }
    if (e >= '0' && e <= '7') {
      size_t end = q + 1;
      unsigned v = 0;
      while (end < src_.size() && end < q + 4 && src_[end] >= '0' && src_[end] <= '7') v = v * 8 + (src_[end++] - '0');
      out += text::encode(v);
      return end;
    }
    const int hex_digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (hex_digits) {
      unsigned long v = 0;
      for (int k = 0; k < hex_digits; ++k) {
        const size_t at = q + 2 + k;
        if (at >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[at])))
          error(q, std::string("truncated \\") + e + " escape in string literal");
        v = v * 16 + static_cast<unsigned long>(std::stoi(std::string(1, src_[at]), nullptr, 16));
      }
      if (v > 0x10FFFF) error(q, "escape \\U is beyond the last Unicode code point");
      out += text::encode(static_cast<char32_t>(v));
      return q + 2 + hex_digits;
    }
    if (e == 'N') error(q, "\\N{...} escapes are not supported in templates");
    out += '\\';  // unknown escapes keep their backslash, as in Python
    return q + 1;
  }

  std::string src_;
  const std::string& name_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  size_t cursor_offset_ = 0;
  SourcePos cursor_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& template_name) {
  return Lexer(source, template_name).run();
}

}  // namespace aqlm::jinja
