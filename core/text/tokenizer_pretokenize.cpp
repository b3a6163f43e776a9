#include "core/text/tokenizer_pretokenize.h"

#include "core/text/unicode.h"

namespace aqlm {
namespace {

using unicode::CharClass;

struct Char {
  size_t offset;  // byte offset in the text
  char32_t cp;    // unicode::kInvalid for a stray byte (class Other)
  CharClass cls;
};

// One pattern applied to the characters [begin, end) of a text: leftmost-first alternation, as
// the regex engine does it, starting where the previous match ended.
class Matcher {
 public:
  Matcher(const std::vector<Char>& chars, size_t begin, size_t end) : c_(chars), begin_(begin), end_(end) {}

  size_t gpt2(size_t i) const {
    if (size_t n = contraction(i, false)) return i + n;                 // 's|'t|'re|'ve|'m|'ll|'d
    if (!is_space(i)) return run_of(i, cls(i));                         // \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+
    if (cp(i) == ' ' && i + 1 < end_ && !is_space(i + 1)) return run_of(i + 1, cls(i + 1));  // the " ?" forms
    return spaces(i);
  }

  size_t llama3(size_t i, size_t max_digits) const {
    if (size_t n = contraction(i, true)) return i + n;  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (cls(i) == CharClass::Letter) return run_of(i, CharClass::Letter);
    if (cls(i) != CharClass::Number && !is_newline(i) && i + 1 < end_ && cls(i + 1) == CharClass::Letter)
      return run_of(i + 1, CharClass::Letter);
    // \p{N}{1,3} (Llama-3) or \p{N} (Qwen2)
    if (cls(i) == CharClass::Number) {
      size_t j = i;
      while (j < end_ && j - i < max_digits && cls(j) == CharClass::Number) ++j;
      return j;
    }
    // " ?[^\s\p{L}\p{N}]+[\r\n]*"
    size_t j = i;
    if (cp(j) == ' ' && j + 1 < end_ && cls(j + 1) == CharClass::Other) ++j;
    if (cls(j) == CharClass::Other) {
      j = run_of(j, CharClass::Other);
      while (j < end_ && is_newline(j)) ++j;
      return j;
    }
    // \s*[\r\n]+ : greedy \s* gives back to the last newline of the white-space run.
    const size_t run_end = run_of(i, CharClass::Space);
    for (size_t k = run_end; k > i; --k) {
      if (is_newline(k - 1)) return k;
    }
    return spaces(i);
  }

 private:
  CharClass cls(size_t i) const { return c_[i].cls; }
  char32_t cp(size_t i) const { return c_[i].cp; }
  bool is_space(size_t i) const { return cls(i) == CharClass::Space; }
  bool is_newline(size_t i) const { return cp(i) == '\r' || cp(i) == '\n'; }

  size_t run_of(size_t i, CharClass k) const {
    while (i < end_ && cls(i) == k) ++i;
    return i;
  }

  // \s+(?!\S)|\s+ at a white-space character: a run that is followed by a non-space gives its
  // last character to that next piece (" world" keeps its space), unless the run is one long.
  size_t spaces(size_t i) const {
    const size_t run_end = run_of(i, CharClass::Space);
    if (run_end == end_ || run_end - i == 1) return run_end;
    return run_end - 1;
  }

  bool letter_is(size_t i, char lower, bool ignore_case) const {
    if (i >= end_) return false;
    const char32_t x = cp(i);
    if (x == char32_t(lower)) return true;
    if (!ignore_case) return false;
    // Oniguruma's case folding: ASCII upper case, and U+017F LATIN SMALL LETTER LONG S folds to 's'.
    return x == char32_t(lower - 'a' + 'A') || (lower == 's' && x == 0x17F);
  }

  // Length in characters of a contraction at i, 0 when there is none.
  size_t contraction(size_t i, bool ignore_case) const {
    if (cp(i) != '\'') return 0;
    for (char one : {'s', 't', 'm', 'd'}) {
      if (letter_is(i + 1, one, ignore_case)) return 2;
    }
    for (const char* two : {"re", "ve", "ll"}) {
      if (letter_is(i + 1, two[0], ignore_case) && letter_is(i + 2, two[1], ignore_case)) return 3;
    }
    return 0;
  }

  const std::vector<Char>& c_;
  size_t begin_, end_;
};

void emit(std::string_view text, const std::vector<Char>& chars, size_t from, size_t to,
          std::vector<std::string_view>& pieces) {
  const size_t b = chars[from].offset;
  const size_t e = to < chars.size() ? chars[to].offset : text.size();
  pieces.push_back(text.substr(b, e - b));
}

void split_range(PreTokenizer kind, std::string_view text, const std::vector<Char>& chars, size_t begin, size_t end,
                 std::vector<std::string_view>& pieces) {
  const Matcher m(chars, begin, end);
  for (size_t i = begin; i < end;) {
    size_t j;
    switch (kind) {
      case PreTokenizer::Llama3: j = m.llama3(i, 3); break;
      case PreTokenizer::Qwen2: j = m.llama3(i, 1); break;
      default: j = m.gpt2(i); break;
    }
    emit(text, chars, i, j, pieces);
    i = j;
  }
}

}  // namespace

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces) {
  if (text.empty()) return;
  if (kind == PreTokenizer::None) {
    pieces.push_back(text);
    return;
  }
  thread_local std::vector<Char> chars;
  chars.clear();
  for (size_t pos = 0; pos < text.size();) {
    const unicode::Decoded d = unicode::decode(text, pos);
    const CharClass cls = d.cp == unicode::kInvalid ? CharClass::Other : unicode::char_class(d.cp);
    chars.push_back({pos, d.cp, cls});
    pos += size_t(d.length);
  }
  if (kind != PreTokenizer::DigitsGpt2) {
    split_range(kind, text, chars, 0, chars.size(), pieces);
    return;
  }
  // Digits(individual_digits=true) first: every number character is a piece of its own, and the
  // GPT-2 pattern then runs inside each stretch between them.
  size_t start = 0;
  for (size_t i = 0; i < chars.size(); ++i) {
    if (chars[i].cls != CharClass::Number) continue;
    split_range(PreTokenizer::Gpt2, text, chars, start, i, pieces);
    emit(text, chars, i, i + 1, pieces);
    start = i + 1;
  }
  split_range(PreTokenizer::Gpt2, text, chars, start, chars.size(), pieces);
}

}  // namespace aqlm
