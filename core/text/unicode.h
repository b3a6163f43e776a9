#pragma once
// The little Unicode the tokenizers need: UTF-8 decoding that never throws (an invalid byte is
// a one-byte "character" of its own, so any input can be tokenized), the letter / number /
// white-space classes of the pre-tokenizer patterns, and UTF-8 repair for decoded text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace aqlm::unicode {

enum class CharClass : uint8_t {
  Other,   // none of the below: punctuation, symbols, marks, controls
  Letter,  // \p{L}
  Number,  // \p{N}
  Space,   // \s, i.e. the White_Space property
};

// Class of a code point (Unicode 16.0, the version of the `tokenizers` regex engine).
CharClass char_class(char32_t cp);

inline constexpr char32_t kInvalid = 0xFFFFFFFF;  // what decode() returns for an invalid byte

struct Decoded {
  char32_t cp;  // kInvalid for a byte that does not start a well-formed UTF-8 sequence
  int length;   // bytes consumed, 1..4
};

// Decodes the character at text[pos] (pos < text.size()). Overlong forms, surrogates and
// code points past U+10FFFF are invalid, as in the Unicode standard.
Decoded decode(std::string_view text, size_t pos);

void append_utf8(std::string& out, char32_t cp);

// At text[pos]: the length of a well-formed UTF-8 sequence; 0 when the sequence is cut off by
// the end of `text` but could still be completed; minus the length of the maximal ill-formed
// subpart (what one U+FFFD replaces) when it can never be valid.
int complete_sequence_length(std::string_view text, size_t pos);

bool is_valid_utf8(std::string_view text);

// Replaces each maximal ill-formed subpart with U+FFFD (the Unicode "best practice" that Rust's
// String::from_utf8_lossy and so the `tokenizers` decoders follow).
std::string to_valid_utf8(std::string_view text);

// Unicode normalization form C (canonical decomposition, canonical ordering, canonical
// composition), as the NFC normalizer of tokenizer.json does it. Ill-formed bytes pass through
// unchanged and block composition across them. ASCII text comes back at once.
std::string to_nfc(std::string_view text);

}  // namespace aqlm::unicode
