// StreamDecoder: streaming ids one at a time gives exactly decode()'s text, and no chunk ever
// holds half a character.
#include <gtest/gtest.h>

#include "core/text/unicode.h"
#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

struct StreamResult {
  std::string text;
  int held_back = 0;  // pushes that returned nothing although the token had bytes
};

StreamResult stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special = true) {
  StreamDecoder decoder(tok, skip_special);
  StreamResult r;
  for (int32_t id : ids) {
    const std::string chunk = decoder.push(id);
    EXPECT_TRUE(unicode::is_valid_utf8(chunk)) << "chunk for id " << id;
    if (chunk.empty() && !tok.token_bytes(id).empty() && !(skip_special && tok.is_special(id))) ++r.held_back;
    r.text += chunk;
  }
  r.text += decoder.flush();
  return r;
}

void expect_streams_like_decode(const Tokenizer& tok, const std::string& name) {
  const auto strings = case_strings();
  int held_back = 0;
  for (int i : tokenizer_cases()["stream_strings"].get<std::vector<int>>()) {
    const auto ids = tok.encode(strings[size_t(i)], true, true);
    const StreamResult r = stream(tok, ids);
    EXPECT_EQ(r.text, tok.decode(ids)) << name << " string " << i;
    EXPECT_EQ(r.text, tokenizer_cases()[name]["decode"][size_t(i)].get<std::string>()) << name << " string " << i;
    held_back += r.held_back;
  }
  // Emoji and CJK take several byte-level tokens or byte-fallback tokens each: the test only means
  // something if some character really was split across tokens.
  EXPECT_GT(held_back, 0) << name;
}

TEST(StreamDecoder, SmolLM2EmojiAndCjk) { expect_streams_like_decode(smollm2_from_gguf(), "smollm2"); }
TEST(StreamDecoder, MistralEmojiAndCjk) { expect_streams_like_decode(mistral_from_json(), "mistral"); }
TEST(StreamDecoder, Tok512EmojiAndCjk) { expect_streams_like_decode(tok512_from_json(), "tok512_llama"); }

TEST(StreamDecoder, EveryReferenceStringStreamsLikeDecode) {
  const auto strings = case_strings();
  for (const Tokenizer* tok : {&smollm2_from_gguf(), &mistral_from_json()}) {
    for (size_t i = 0; i < strings.size(); ++i) {
      const auto ids = tok->encode(strings[i], true, true);
      EXPECT_EQ(stream(*tok, ids).text, tok->decode(ids)) << "string " << i;
      EXPECT_EQ(stream(*tok, ids, false).text, tok->decode(ids, false)) << "string " << i << " with specials";
    }
  }
}

TEST(StreamDecoder, LeadingSpaceIsStrippedOnlyAtTheStart) {
  const Tokenizer& tok = mistral_from_json();
  StreamDecoder decoder(tok);
  EXPECT_EQ(decoder.push(1), "");  // BOS, skipped
  EXPECT_EQ(decoder.push(*tok.token_id("\xE2\x96\x81Hello")), "Hello");
  EXPECT_EQ(decoder.push(*tok.token_id("\xE2\x96\x81world")), " world");
}

TEST(StreamDecoder, IncompleteBytesAtTheEndBecomeReplacementCharacters) {
  const Tokenizer& tok = mistral_from_json();
  StreamDecoder decoder(tok);
  EXPECT_EQ(decoder.push(*tok.token_id("<0xF0>")), "");
  EXPECT_EQ(decoder.push(*tok.token_id("<0x9F>")), "");
  EXPECT_EQ(decoder.flush(), "\xEF\xBF\xBD");  // one maximal subpart
  // A byte that can never start a character is given out at once.
  EXPECT_EQ(decoder.push(*tok.token_id("<0xFF>")), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.push(*tok.token_id("a")), "a");
}

}  // namespace
}  // namespace aqlm::test
