#include "core/text/unicode.h"

#include <algorithm>
#include <array>

namespace aqlm::unicode {
namespace {

struct ClassRun {
  char32_t start;
  CharClass cls;
};
struct CccRun {
  char32_t first, last;
  uint8_t ccc;
};
struct Decomposition {
  char32_t cp;
  uint16_t offset;
  uint8_t length;
};
struct Composition {
  char32_t first, second, composite;
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

// Hangul syllables decompose and compose by formula (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// A stray byte b is carried through normalization as this value: class 0, composes with nothing.
constexpr char32_t kStrayByte = 0x80000000;

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300 || cp >= kStrayByte) return 0;
  const auto* end = kCccRuns + std::size(kCccRuns);
  const auto* it = std::upper_bound(kCccRuns, end, cp, [](char32_t c, const CccRun& r) { return c < r.first; });
  if (it == kCccRuns) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void decompose(char32_t cp, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount != 0) out += kTBase + s % kTCount;
    return;
  }
  const auto* end = kDecompositions + std::size(kDecompositions);
  const auto* it = std::lower_bound(kDecompositions, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  if (it != end && it->cp == cp) {
    out.append(kDecompositionPool + it->offset, it->length);
  } else {
    out += cp;
  }
}

// The primary composite of a pair, or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = kCompositions + std::size(kCompositions);
  const auto* it = std::lower_bound(kCompositions, end, std::pair(a, b), [](const Composition& c, std::pair<char32_t, char32_t> k) {
    return std::pair(c.first, c.second) < k;
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

std::string to_nfc(std::string_view text) {
  bool ascii = true;
  for (char ch : text) ascii = ascii && uint8_t(ch) < 0x80;
  if (ascii) return std::string(text);

  std::u32string chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Decoded d = decode(text, pos);
    if (d.cp == kInvalid) chars += kStrayByte | uint8_t(text[pos]);
    else decompose(d.cp, chars);
    pos += size_t(d.length);
  }
  // Canonical ordering: within each run of non-starters, a stable sort by combining class.
  for (size_t i = 1; i < chars.size(); ++i) {
    const uint8_t cc = combining_class(chars[i]);
    if (cc == 0) continue;
    for (size_t j = i; j > 0 && combining_class(chars[j - 1]) > cc; --j) std::swap(chars[j - 1], chars[j]);
  }
  // Canonical composition: each character joins the last starter unless something between them
  // blocks it (a character of the same or a higher class, or a starter).
  std::u32string composed;
  composed.reserve(chars.size());
  size_t starter = std::u32string::npos;
  int last_class = -1;
  for (char32_t ch : chars) {
    const int cc = combining_class(ch);
    if (starter != std::u32string::npos && (last_class < cc || last_class == 0)) {
      if (const char32_t c = compose(composed[starter], ch)) {
        composed[starter] = c;
        continue;
      }
    }
    if (cc == 0) starter = composed.size();
    last_class = cc;
    composed += ch;
  }
  std::string out;
  out.reserve(text.size());
  for (char32_t ch : composed) {
    if (ch >= kStrayByte) out += char(ch & 0xFF);
    else append_utf8(out, ch);
  }
  return out;
}

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
