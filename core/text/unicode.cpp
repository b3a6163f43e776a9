#include "core/text/unicode.h"

#include <algorithm>
#include <array>

namespace aqlm::unicode {
namespace {

struct ClassRun {
  char32_t start;
  CharClass cls;
};
constexpr CharClass kOther = CharClass::Other, kLetter = CharClass::Letter, kNumber = CharClass::Number,
                    kSpace = CharClass::Space;
#include "core/text/unicode_tables.inc"

CharClass lookup_runs(char32_t cp) {
  const auto* end = kClassRuns + std::size(kClassRuns);
  const auto* it = std::upper_bound(kClassRuns, end, cp, [](char32_t c, const ClassRun& r) { return c < r.start; });
  return (it - 1)->cls;  // the first run starts at 0, so `it` is never the first element
}

// Most text is Latin: a direct table for the first 2048 code points keeps the splitters fast.
const std::array<CharClass, 2048>& low_table() {
  static const std::array<CharClass, 2048> table = [] {
    std::array<CharClass, 2048> t{};
    for (char32_t cp = 0; cp < t.size(); ++cp) t[cp] = lookup_runs(cp);
    return t;
  }();
  return table;
}

enum class SeqStatus { Valid, Incomplete, Invalid };
struct SeqScan {
  SeqStatus status;
  int length;  // Valid: the sequence; Incomplete: bytes present; Invalid: the maximal ill-formed subpart
};

// Table 3-7 of the Unicode standard: the allowed range of the second byte depends on the first.
SeqScan scan(std::string_view text, size_t pos) {
  const auto b0 = uint8_t(text[pos]);
  if (b0 < 0x80) return {SeqStatus::Valid, 1};
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return {SeqStatus::Invalid, 1};
  }
  for (int i = 1; i <= need; ++i) {
    if (pos + i >= text.size()) return {SeqStatus::Incomplete, i};
    const auto b = uint8_t(text[pos + i]);
    if (b < lo || b > hi) return {SeqStatus::Invalid, i};
    lo = 0x80;
    hi = 0xBF;
  }
  return {SeqStatus::Valid, need + 1};
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp < 2048) return low_table()[cp];
  if (cp > 0x10FFFF) return CharClass::Other;
  return lookup_runs(cp);
}

Decoded decode(std::string_view text, size_t pos) {
  const SeqScan s = scan(text, pos);
  if (s.status != SeqStatus::Valid) return {kInvalid, 1};
  const auto* p = reinterpret_cast<const uint8_t*>(text.data() + pos);
  switch (s.length) {
    case 1: return {p[0], 1};
    case 2: return {char32_t(p[0] & 0x1F) << 6 | (p[1] & 0x3F), 2};
    case 3: return {char32_t(p[0] & 0x0F) << 12 | char32_t(p[1] & 0x3F) << 6 | (p[2] & 0x3F), 3};
    default:
      return {char32_t(p[0] & 0x07) << 18 | char32_t(p[1] & 0x3F) << 12 | char32_t(p[2] & 0x3F) << 6 | (p[3] & 0x3F),
              4};
  }
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

int complete_sequence_length(std::string_view text, size_t pos) {
  const SeqScan s = scan(text, pos);
  switch (s.status) {
    case SeqStatus::Valid: return s.length;
    case SeqStatus::Incomplete: return 0;
    default: return -s.length;
  }
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const SeqScan s = scan(text, pos);
    if (s.status != SeqStatus::Valid) return false;
    pos += size_t(s.length);
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const SeqScan s = scan(text, pos);
    if (s.status == SeqStatus::Valid) {
      out.append(text.substr(pos, size_t(s.length)));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
    }
    pos += size_t(s.length);
  }
  return out;
}

}  // namespace aqlm::unicode
