// The hand-written pre-tokenizer splitters against the `tokenizers` library's regex splits
// (ByteLevel, Digits+ByteLevel, Split(Llama-3 / Qwen2 pattern, "isolated")) on the string set.
#include <gtest/gtest.h>

#include "core/text/tokenizer_pretokenize.h"
#include "core/text/unicode.h"
#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

std::vector<std::string> split(PreTokenizer kind, const std::string& text) {
  std::vector<std::string_view> views;
  pre_tokenize(kind, text, views);
  return {views.begin(), views.end()};
}

void expect_splits(PreTokenizer kind, const std::string& name) {
  const auto strings = case_strings();
  const auto& expected = tokenizer_cases()["splits"][name];
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(split(kind, strings[i]), expected[i].get<std::vector<std::string>>())
        << name << " string " << i << ": " << testing::PrintToString(strings[i]);
  }
}

TEST(PreTokenizer, Gpt2SplitsEqualReference) { expect_splits(PreTokenizer::Gpt2, "gpt2"); }
TEST(PreTokenizer, DigitsThenGpt2SplitsEqualReference) { expect_splits(PreTokenizer::DigitsGpt2, "digits_gpt2"); }
TEST(PreTokenizer, Llama3SplitsEqualReference) { expect_splits(PreTokenizer::Llama3, "llama3"); }
TEST(PreTokenizer, Qwen2SplitsEqualReference) { expect_splits(PreTokenizer::Qwen2, "qwen2"); }

TEST(PreTokenizer, PatternsAreSpelledAsTheReferenceSpellsThem) {
  // The tokenizer.json loader recognises the patterns by their exact text.
  const auto& patterns = tokenizer_cases()["splits"]["patterns"];
  EXPECT_EQ(patterns["llama3"].get<std::string>(), kLlama3Pattern);
  EXPECT_EQ(patterns["qwen2"].get<std::string>(), kQwen2Pattern);
}

TEST(PreTokenizer, HandPickedCornerCases) {
  // Written out by hand from the regex semantics, as a readable second opinion.
  using V = std::vector<std::string>;
  EXPECT_EQ(split(PreTokenizer::Gpt2, "a  b"), (V{"a", " ", " b"}));          // \s+(?!\S) leaves " b" whole
  EXPECT_EQ(split(PreTokenizer::Gpt2, "x's 's"), (V{"x", "'s", " '", "s"}));  // contraction only without the space
  EXPECT_EQ(split(PreTokenizer::Gpt2, "I'M"), (V{"I", "'", "M"}));            // GPT-2 is case-sensitive
  EXPECT_EQ(split(PreTokenizer::Llama3, "I'M"), (V{"I", "'M"}));              // Llama-3 is not
  EXPECT_EQ(split(PreTokenizer::Llama3, "12345"), (V{"123", "45"}));
  EXPECT_EQ(split(PreTokenizer::Qwen2, "12345"), (V{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(split(PreTokenizer::Llama3, "a \n\n b"), (V{"a", " \n\n", " b"}));  // \s*[\r\n]+
  EXPECT_EQ(split(PreTokenizer::DigitsGpt2, "v 12"), (V{"v", " ", "1", "2"}));
  EXPECT_EQ(split(PreTokenizer::Gpt2, "trailing  "), (V{"trailing", "  "}));
  EXPECT_EQ(split(PreTokenizer::None, "as is"), (V{"as is"}));
  EXPECT_TRUE(split(PreTokenizer::Gpt2, "").empty());
  // A stray byte is a character of class "other".
  EXPECT_EQ(split(PreTokenizer::Gpt2, "a\xFF\xFE b"), (V{"a", "\xFF\xFE", " b"}));
}

TEST(Unicode, ClassesOfSampleCodePoints) {
  using unicode::CharClass;
  EXPECT_EQ(unicode::char_class('a'), CharClass::Letter);
  EXPECT_EQ(unicode::char_class(0x65E5), CharClass::Letter);  // 日
  EXPECT_EQ(unicode::char_class(0x1C89), CharClass::Letter);  // new in Unicode 16, as in `tokenizers`
  EXPECT_EQ(unicode::char_class('7'), CharClass::Number);
  EXPECT_EQ(unicode::char_class(0x2163), CharClass::Number);  // Ⅳ (Nl)
  EXPECT_EQ(unicode::char_class(0x00B2), CharClass::Number);  // ² (No)
  EXPECT_EQ(unicode::char_class(0x3000), CharClass::Space);
  EXPECT_EQ(unicode::char_class(0x0085), CharClass::Space);
  EXPECT_EQ(unicode::char_class(0x200B), CharClass::Other);  // zero-width space is not White_Space
  EXPECT_EQ(unicode::char_class(0x1F999), CharClass::Other);  // 🦙
  EXPECT_EQ(unicode::char_class(0x110000), CharClass::Other);
}

TEST(Unicode, DecodeRejectsIllFormedSequences) {
  EXPECT_EQ(unicode::decode("\xE2\x82\xAC", 0).cp, char32_t(0x20AC));
  EXPECT_EQ(unicode::decode("\xF0\x9F\xA6\x99", 0).cp, char32_t(0x1F999));
  EXPECT_EQ(unicode::decode("\xC0\xAF", 0).cp, unicode::kInvalid);          // overlong
  EXPECT_EQ(unicode::decode("\xED\xA0\x80", 0).cp, unicode::kInvalid);      // surrogate
  EXPECT_EQ(unicode::decode("\xF4\x90\x80\x80", 0).cp, unicode::kInvalid);  // past U+10FFFF
  EXPECT_EQ(unicode::decode("\xE2\x82", 0).length, 1);
}

TEST(Unicode, RepairReplacesMaximalSubparts) {
  // Expected values from Python's bytes.decode("utf-8", "replace"), which follows the same rule.
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(unicode::to_valid_utf8("\xE2\x82" "A"), fffd + "A");
  EXPECT_EQ(unicode::to_valid_utf8("\xF0\x80\x80"), fffd + fffd + fffd);
  EXPECT_EQ(unicode::to_valid_utf8("\xE2\x82\xE2\x82\xAC"), fffd + "\xE2\x82\xAC");
  EXPECT_EQ(unicode::to_valid_utf8("\xF0\x9F\xA6"), fffd);
  EXPECT_EQ(unicode::to_valid_utf8("ok"), "ok");
  EXPECT_EQ(unicode::complete_sequence_length("\xF0\x9F\xA6", 0), 0);   // may still complete
  EXPECT_EQ(unicode::complete_sequence_length("\xF0\x9F\x41", 0), -2);  // never: F0 9F is the subpart
  EXPECT_EQ(unicode::complete_sequence_length("\xF0\x9F\xA6\x99", 0), 4);
}

TEST(Unicode, NfcEqualsTheReferenceNormalizer) {
  // Every code point normalization touches, decomposed and as is, and random mixes of bases and
  // combining marks, against the `tokenizers` NFC normalizer.
  const auto& nfc = tokenizer_cases()["nfc"];
  const auto inputs = nfc["input"].get<std::vector<std::string>>();
  const auto expected = nfc["expected"].get<std::vector<std::string>>();
  ASSERT_GT(inputs.size(), 9000u);
  int mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (unicode::to_nfc(inputs[i]) == expected[i]) continue;
    if (++mismatches <= 10) ADD_FAILURE() << "NFC of " << testing::PrintToString(inputs[i]);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Unicode, NfcKeepsStrayBytesAndAscii) {
  EXPECT_EQ(unicode::to_nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(unicode::to_nfc("e\xCC\x81"), "\xC3\xA9");                  // e + U+0301 -> é
  EXPECT_EQ(unicode::to_nfc("e\xFF\xCC\x81"), "e\xFF\xCC\x81");          // a stray byte blocks composition
  EXPECT_EQ(unicode::to_nfc("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");  // Hangul L + V -> 가
}

}  // namespace
}  // namespace aqlm::test
