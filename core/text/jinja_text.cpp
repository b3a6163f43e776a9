#include "core/text/jinja_text.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace aqlm::jinja::text {

std::vector<char32_t> decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int extra = b0 < 0x80 ? 0 : (b0 >> 5) == 0x6 ? 1 : (b0 >> 4) == 0xE ? 2 : (b0 >> 3) == 0x1E ? 3 : -1;
    char32_t cp = extra == 0 ? b0 : extra == 1 ? (b0 & 0x1F) : extra == 2 ? (b0 & 0x0F) : (b0 & 0x07);
    bool valid = extra >= 0 && i + static_cast<size_t>(extra) < s.size();
    for (int k = 1; valid && k <= extra; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      valid = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!valid) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

std::string encode(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::string encode(const std::vector<char32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) out += encode(c);
  return out;
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_line_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

bool is_printable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c <= 0xA0 || c == 0xAD) return false;  // C1 controls, no-break space, soft hyphen
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F))
    return false;  // separators and format characters
  if (c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || c == 0x180E) return false;
  if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000 || c == 0xFFFE || c == 0xFFFF) return false;  // surrogates, private use
  if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || (c >= 0xE0000 && c <= 0xE0FFF)) return false;
  return true;
}

namespace {

// The C library knows Unicode case mappings in a UTF-8 locale; C.UTF-8 is in every glibc.
locale_t unicode_locale() {
  static locale_t loc = [] {
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"}) {
      if (locale_t l = newlocale(LC_CTYPE_MASK, name, static_cast<locale_t>(0))) return l;
    }
    return static_cast<locale_t>(0);
  }();
  return loc;
}

}  // namespace

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  locale_t loc = unicode_locale();
  return loc ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), loc)) : c;
}

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  locale_t loc = unicode_locale();
  return loc ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)) : c;
}

bool is_cased(char32_t c) { return to_upper(c) != c || to_lower(c) != c; }

bool is_word(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  locale_t loc = unicode_locale();
  return loc && !is_space(c) && iswalnum_l(static_cast<wint_t>(c), loc);
}

std::string upper(std::string_view s) {
  std::string out;
  for (char32_t c : decode(s)) out += c == 0xDF ? std::string("SS") : encode(to_upper(c));  // ß has no 1:1 upper form
  return out;
}

std::string lower(std::string_view s) {
  std::string out;
  for (char32_t c : decode(s)) out += encode(to_lower(c));
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (char32_t c : decode(s)) {
    out += encode(first ? to_upper(c) : to_lower(c));
    first = false;
  }
  return out;
}

std::string title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : decode(s)) {
    out += encode(previous_cased ? to_lower(c) : to_upper(c));
    previous_cased = is_cased(c);
  }
  return out;
}

std::string jinja_title(std::string_view s) {
  // Jinja splits on runs of [-\s({\[<] and upper-cases the first character of every piece.
  auto is_break = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c); };
  std::string out;
  bool at_word_start = true;
  for (char32_t c : decode(s)) {
    if (is_break(c)) {
      out += encode(c);
      at_word_start = true;
    } else {
      out += encode(at_word_start ? to_upper(c) : to_lower(c));
      at_word_start = false;
    }
  }
  return out;
}

bool is_lower(std::string_view s) {
  bool any_cased = false;
  for (char32_t c : decode(s)) {
    if (to_lower(c) != c) return false;
    any_cased |= to_upper(c) != c;
  }
  return any_cased;
}

bool is_upper(std::string_view s) {
  bool any_cased = false;
  for (char32_t c : decode(s)) {
    if (to_upper(c) != c) return false;
    any_cased |= to_lower(c) != c;
  }
  return any_cased;
}

namespace {

// The code point starting at s[i] and its byte length (invalid bytes count as one U+FFFD).
std::pair<char32_t, size_t> code_point_at(std::string_view s, size_t i) {
  size_t len = 1;
  while (i + len < s.size() && len < 4 && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
  const std::vector<char32_t> cp = decode(s.substr(i, len));
  return {cp.empty() ? 0xFFFD : cp[0], cp.size() == 1 ? len : 1};
}

size_t previous_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && end - i < 4 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

}  // namespace

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::vector<char32_t> set;
  if (chars) set = decode(*chars);
  auto strippable = [&](char32_t c) { return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_space(c); };
  // Only the ends are decoded: strip runs on every message of long conversations.
  size_t begin = 0, end = s.size();
  while (left && begin < end) {
    const auto [c, len] = code_point_at(s, begin);
    if (!strippable(c)) break;
    begin += len;
  }
  while (right && end > begin) {
    const size_t start = previous_start(s, end);
    const auto [c, len] = code_point_at(s, start);
    if (start + len != end || !strippable(c)) break;  // an invalid byte ends the stripping, as U+FFFD would
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& separator, int64_t max_split,
                               bool from_right) {
  std::vector<std::string> parts;
  if (!separator) {
    // Runs of whitespace separate; leading/trailing whitespace yields no empty parts.
    std::vector<char32_t> cps = decode(s);
    if (from_right) std::reverse(cps.begin(), cps.end());
    size_t i = 0;
    while (true) {
      while (i < cps.size() && is_space(cps[i])) ++i;
      if (i == cps.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        std::vector<char32_t> rest(cps.begin() + i, cps.end());  // the remainder keeps its trailing space
        if (from_right) std::reverse(rest.begin(), rest.end());
        parts.push_back(encode(rest));
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_space(cps[j])) ++j;
      std::vector<char32_t> word(cps.begin() + i, cps.begin() + j);
      if (from_right) std::reverse(word.begin(), word.end());
      parts.push_back(encode(word));
      i = j;
    }
    if (from_right) std::reverse(parts.begin(), parts.end());
    return parts;
  }
  const std::string& sep = *separator;
  if (!from_right) {
    size_t start = 0;
    while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
      size_t at = s.find(sep, start);
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, at - start));
      start = at + sep.size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  size_t end = s.size();
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    if (end < sep.size()) break;
    size_t at = s.rfind(sep, end - sep.size());
    if (at == std::string_view::npos) break;
    parts.emplace_back(s.substr(at + sep.size(), end - at - sep.size()));
    end = at;
  }
  parts.emplace_back(s.substr(0, end));
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> lines;
  const std::vector<char32_t> cps = decode(s);
  std::vector<char32_t> line;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_line_break(cps[i])) {
      line.push_back(cps[i]);
      continue;
    }
    if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    lines.push_back(encode(line));
    line.clear();
  }
  if (!line.empty()) lines.push_back(encode(line));
  return lines;
}

std::string replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count) {
  std::string out;
  if (old.empty()) {
    const std::vector<char32_t> cps = decode(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      if (i < cps.size()) out += encode(cps[i]);
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(replacement);
    start = at + old.size();
    ++done;
  }
  out.append(s.substr(start));
  return out;
}

int64_t count(std::string_view s, std::string_view needle) {
  if (needle.empty()) return static_cast<int64_t>(length(s)) + 1;
  int64_t n = 0;
  for (size_t at = s.find(needle); at != std::string_view::npos; at = s.find(needle, at + needle.size())) ++n;
  return n;
}

int64_t find(std::string_view s, std::string_view needle) {
  size_t at = s.find(needle);
  return at == std::string_view::npos ? -1 : static_cast<int64_t>(length(s.substr(0, at)));
}

std::string repr(std::string_view s) {
  const std::vector<char32_t> cps = decode(s);
  const bool has_single = std::find(cps.begin(), cps.end(), U'\'') != cps.end();
  const bool has_double = std::find(cps.begin(), cps.end(), U'"') != cps.end();
  const char32_t quote = (has_single && !has_double) ? U'"' : U'\'';
  static const char* hex = "0123456789abcdef";
  std::string out(1, static_cast<char>(quote));
  for (char32_t c : cps) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (is_printable(c)) {
      out += encode(c);
    } else {
      const int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
      out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
      for (int k = digits - 1; k >= 0; --k) out += hex[(c >> (4 * k)) & 0xF];
    }
  }
  out += static_cast<char>(quote);
  return out;
}

namespace {

// Removes Python's digit-grouping underscores; nullopt where one is misplaced.
std::optional<std::string> without_underscores(std::string_view digits) {
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (digits[i] != '_') {
      out += digits[i];
      continue;
    }
    auto is_digit = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    if (i == 0 || i + 1 == digits.size() || !is_digit(digits[i - 1]) || !is_digit(digits[i + 1])) return std::nullopt;
  }
  return out;
}

}  // namespace

std::optional<int64_t> parse_int(std::string_view s, int base) {
  std::string t = strip(s, std::nullopt, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) negative = t[i++] == '-';
  auto has_prefix = [&](char p) {
    return i + 1 < t.size() && t[i] == '0' && (t[i + 1] == p || t[i + 1] == p - 32);
  };
  if (base == 0) {
    base = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 10;
    if (base == 10 && t.size() - i > 1 && t[i] == '0' && t.find_first_not_of("0_", i) != std::string::npos)
      return std::nullopt;  // Python refuses leading zeros in base 0
  }
  if ((base == 16 && has_prefix('x')) || (base == 8 && has_prefix('o')) || (base == 2 && has_prefix('b'))) {
    i += 2;
    if (i < t.size() && t[i] == '_') ++i;
  }
  if (base < 2 || base > 36 || i >= t.size()) return std::nullopt;
  auto digits = without_underscores(std::string_view(t).substr(i));
  if (!digits || digits->empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(digits->c_str(), &end, base);
  if (errno != 0 || *end != '\0' || (*digits)[0] == '+' || (*digits)[0] == '-') return std::nullopt;
  return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
}

std::optional<double> parse_float(std::string_view s) {
  std::string t = strip(s, std::nullopt, true, true);
  if (t.empty()) return std::nullopt;
  std::string lowered = lower(t);
  std::string_view body = lowered;
  if (body[0] == '+' || body[0] == '-') body.remove_prefix(1);
  if (body == "inf" || body == "infinity" || body == "nan") return std::strtod(lowered.c_str(), nullptr);
  if (t.find_first_not_of("0123456789_.eE+-") != std::string::npos) return std::nullopt;  // no hex floats
  auto cleaned = without_underscores(t);
  if (!cleaned || cleaned->empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(cleaned->c_str(), &end);
  if (*end != '\0' || end == cleaned->c_str()) return std::nullopt;
  return v;
}

}  // namespace aqlm::jinja::text
