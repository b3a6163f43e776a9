// Our tokenizers against the Hugging Face `tokenizers` library, sentencepiece and llama2.c's
// algorithm (tests/fixtures/text/tokenizer_cases.json, from scripts/reference/tokenizer_reference.py).
// Ids must match exactly: a tokenizer that is off by one merge changes what the model sees.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/common/error.h"
#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

TEST(TokenizerSmolLM2, GgufKeysGiveTheReferenceIds) {
  const Tokenizer& tok = smollm2_from_gguf();
  EXPECT_EQ(tok.spec().kind, TokenizerKind::ByteLevelBpe);
  EXPECT_EQ(tok.spec().pre_tokenizer, PreTokenizer::DigitsGpt2);  // GGUF pre "smollm"
  EXPECT_EQ(tok.vocab_size(), 49152);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_FALSE(tok.spec().add_bos);
  expect_ids_match(tok, "smollm2");
}

TEST(TokenizerSmolLM2, TokenizerJsonGivesTheReferenceIds) {
  const Tokenizer& tok = smollm2_from_json();
  EXPECT_EQ(tok.spec().pre_tokenizer, PreTokenizer::DigitsGpt2);
  EXPECT_EQ(tok.bos_id(), 1);  // from tokenizer_config.json's bos_token "<|im_start|>"
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.spec().pad_id, 2);
  EXPECT_EQ(tok.spec().unk_id, -1);  // the BPE model names no unk_token
  expect_ids_match(tok, "smollm2");
}

TEST(TokenizerSmolLM2, SpecialTokensAreOnlyParsedWhenAsked) {
  const Tokenizer& tok = smollm2_from_gguf();
  const std::string prompt = "<|im_start|>user\nHi<|im_end|>";
  const auto parsed = tok.encode(prompt, false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);
  EXPECT_EQ(parsed.back(), 2);
  const auto plain = tok.encode(prompt, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_TRUE(tok.is_special(1));
  EXPECT_FALSE(tok.is_special(100));
  EXPECT_EQ(tok.token_id("<|im_end|>"), 2);
  EXPECT_EQ(tok.token_id("\xC4\xA0the"), tok.encode(" the", false).at(0));  // "Ġthe"
  EXPECT_EQ(tok.token_id("no such piece"), std::nullopt);
}

TEST(TokenizerSmolLM2, DecodeEqualsReference) {
  expect_decode_matches(smollm2_from_gguf(), "smollm2");
  expect_decode_matches(smollm2_from_json(), "smollm2");
}

TEST(TokenizerByteLevel, Llama3StructureGivesTheReferenceIds) {
  // SmolLM2's vocabulary behind Llama-3's pattern and ignore_merges, against `tokenizers` with
  // the same structure: the Llama-3 pipeline end to end.
  TokenizerSpec spec = spec_from_gguf_fixture("smollm2_gguf_tokenizer.json");
  spec.pre_tokenizer = PreTokenizer::Llama3;
  spec.ignore_merges = true;
  expect_ids_match(*make_tokenizer(spec), "smollm2_as_llama3");
}

TEST(TokenizerByteLevel, Qwen2StructureWithNfcGivesTheReferenceIds) {
  TokenizerSpec spec = spec_from_gguf_fixture("smollm2_gguf_tokenizer.json");
  spec.pre_tokenizer = PreTokenizer::Qwen2;
  spec.nfc = true;
  const auto tok = make_tokenizer(spec);
  expect_ids_match(*tok, "smollm2_as_qwen2");
  expect_decode_matches(*tok, "smollm2_as_qwen2");
}

TEST(TokenizerByteLevel, AddedTokensThatStripWhiteSpace) {
  TokenizerSpec spec = spec_from_gguf_fixture("smollm2_gguf_tokenizer.json");
  spec.added_tokens[1].lstrip = true;  // <|im_start|>
  spec.added_tokens[2].rstrip = true;  // <|im_end|>
  const auto tok = make_tokenizer(spec);
  const auto& expected = tokenizer_cases()["smollm2_strip"];
  const auto strings = expected["strings"].get<std::vector<std::string>>();
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(tok->encode(strings[i], false, true), expected["ids"][i].get<std::vector<int32_t>>()) << strings[i];
  }
  // Written and read back, the flags survive.
  const TokenizerSpec back = tokenizer_spec_from_hf_json(tokenizer_spec_to_hf_json(spec), nullptr, "written");
  EXPECT_TRUE(back.added_tokens[1].lstrip);
  EXPECT_TRUE(back.added_tokens[2].rstrip);
  EXPECT_FALSE(back.added_tokens[2].lstrip);
}

TEST(TokenizerSentencePiece, MistralTokenizerJsonGivesTheReferenceIds) {
  const Tokenizer& tok = mistral_from_json();
  EXPECT_EQ(tok.spec().kind, TokenizerKind::SentencePieceBpe);
  EXPECT_TRUE(tok.spec().add_bos);  // TemplateProcessing "<s> $A"
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.spec().unk_id, 0);
  EXPECT_FALSE(tok.spec().merges.empty());
  expect_ids_match(tok, "mistral");
  expect_decode_matches(tok, "mistral");
}

TEST(TokenizerSentencePiece, MistralGgufKeysMergeByScoreToTheSameIds) {
  const Tokenizer& tok = mistral_from_gguf();
  EXPECT_TRUE(tok.spec().merges.empty());  // llama.cpp's way: merges by score
  EXPECT_TRUE(tok.spec().add_bos);
  expect_ids_match(tok, "mistral");
  expect_decode_matches(tok, "mistral");
}

TEST(TokenizerSentencePiece, MetaspacePrependFirstGivesTheReferenceIds) {
  // Newer Llama / Mistral files: Metaspace(prepend_scheme "first"): no "▁" after an added token.
  TokenizerSpec spec = spec_from_json_fixture("mistral_tokenizer.json");
  spec.dummy_prefix = DummyPrefix::MetaspaceFirst;
  const TokenizerSpec back = tokenizer_spec_from_hf_json(tokenizer_spec_to_hf_json(spec), nullptr, "written");
  EXPECT_EQ(back.dummy_prefix, DummyPrefix::MetaspaceFirst);  // written as Metaspace, read back
  const auto tok = make_tokenizer(back);
  expect_ids_match(*tok, "mistral_metaspace_first");
  expect_decode_matches(*tok, "mistral_metaspace_first");
  spec.dummy_prefix = DummyPrefix::MetaspaceAlways;
  expect_ids_match(*make_tokenizer(spec), "mistral_metaspace_always");
}

TEST(TokenizerSentencePiece, Tok512TokenizerJsonGivesTheReferenceIds) {
  const Tokenizer& tok = tok512_from_json();
  expect_ids_match(tok, "tok512_llama");
  expect_decode_matches(tok, "tok512_llama");
}

TEST(TokenizerLlama2c, Tok512BinMatchesLlama2cAndTheLlamaStyleJson) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  const auto tok = make_tokenizer(tokenizer_spec_from_llama2c(path.string(), 512));
  EXPECT_EQ(tok->spec().kind, TokenizerKind::Llama2c);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->spec().vocab[1], "<s>");  // stored as "\n<s>\n"
  const auto strings = case_strings();
  const auto& llama2c = tokenizer_cases()["tok512_llama2c"]["ids"];
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(tok->encode(strings[i]), llama2c[i].get<std::vector<int32_t>>()) << "string " << i;
  }
  // The same vocabulary written as a Llama-style tokenizer.json tokenizes the same in every mode.
  expect_ids_match(*tok, "tok512_llama");
  expect_decode_matches(*tok, "tok512_llama");
}

TEST(TokenizerLlama2c, FirstTinyStoryEncodesTo374Ids) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  AQLM_REQUIRE_SHARED(stories, "data/tinystories-sample.txt");
  const auto tok = make_tokenizer(tokenizer_spec_from_llama2c(path.string(), 512));
  std::string text = read_text_file(stories);
  text = text.substr(0, text.find("<|endoftext|>"));
  const size_t b = text.find_first_not_of(" \t\r\n"), e = text.find_last_not_of(" \t\r\n");
  text = text.substr(b, e - b + 1);
  const auto ids = tok->encode(text);
  ASSERT_EQ(ids.size(), 374u);
  // The first 20 ids as shared/README.md gives them.
  const std::vector<int32_t> readme = {1,   403, 407, 261, 378, 383, 286, 261, 376, 268,
                                       414, 422, 395, 368, 302, 426, 368, 302, 401, 396};
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 20), readme);
  EXPECT_EQ(ids, tokenizer_cases()["tok512_llama2c"]["story_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(tok->decode(ids), text);  // the dummy-prefix space is stripped again
}

TEST(TokenizerLlama2c, GreedyGoldenIdsDecodeToTheGoldenText) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  const auto tok = make_tokenizer(tokenizer_spec_from_llama2c(path.string(), 512));
  // The first 30 golden ids (BOS included) of shared/README.md, and the golden text they begin.
  const std::vector<int32_t> golden = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                       426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295};
  const std::string golden_text =
      " Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
      "saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to";
  // The golden text is the raw pieces joined; 29 tokens reach into "park".
  std::string raw;
  for (size_t i = 1; i < golden.size(); ++i) raw += tok->token_bytes(golden[i]);
  EXPECT_EQ(raw, golden_text.substr(0, raw.size()));
  EXPECT_EQ(raw.size(), golden_text.find("park") + 3);
  // decode() drops BOS and, like the HF Strip decoder, the dummy-prefix space.
  EXPECT_EQ(tok->decode(golden), raw.substr(1));
  EXPECT_EQ(tok->decode(golden, false), "<s>" + raw);  // "<s>" first: nothing to strip
}

TEST(TokenizerCommon, EncodeAndDecodeAreSafeFromSeveralThreads) {
  const Tokenizer& tok = smollm2_from_gguf();
  const auto strings = case_strings();
  std::vector<std::vector<int32_t>> expected;
  for (const auto& s : strings) expected.push_back(tok.encode(s));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < strings.size(); ++i) {
          if (tok.encode(strings[i]) != expected[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TokenizerCommon, InvalidUtf8InputIsTokenizedByBytes) {
  // Text from a file may hold stray bytes: byte-level BPE keeps them exactly, SentencePiece falls
  // back to its byte tokens; decode then shows U+FFFD where they were (one per maximal ill-formed
  // subpart, as Python's bytes.decode("utf-8", "replace") gives "ab\ufffd(c\ufffd\ufffd").
  const std::string text = "ab\xC3(c\x80\xE2\x82";
  const std::string fffd = "\xEF\xBF\xBD";
  const Tokenizer& smol = smollm2_from_gguf();
  const auto ids = smol.encode(text);
  std::string raw;
  for (int32_t id : ids) raw += smol.token_bytes(id);
  EXPECT_EQ(raw, text);
  EXPECT_EQ(smol.decode(ids), "ab" + fffd + "(c" + fffd + fffd);

  const Tokenizer& mistral = mistral_from_json();
  const auto sp_ids = mistral.encode(text, false);
  std::string sp_raw;
  for (int32_t id : sp_ids) sp_raw += mistral.token_bytes(id);
  EXPECT_EQ(sp_raw, " " + text);
  const std::vector<int32_t> tail(sp_ids.end() - 2, sp_ids.end());
  EXPECT_EQ(tail, (std::vector<int32_t>{*mistral.token_id("<0xE2>"), *mistral.token_id("<0x82>")}));
  // ByteFallback: a run of byte tokens that is not valid UTF-8 becomes one U+FFFD per byte.
  EXPECT_EQ(mistral.decode(sp_ids), "ab" + fffd + "(c" + fffd + fffd + fffd);
}

TEST(TokenizerCommon, ByteMissingFromAByteLevelVocabularyBecomesUnk) {
  // SmolLM2's vocabulary lacks the bytes that never occur in UTF-8 (0xF5..0xFF); the GGUF names
  // <|endoftext|> as its unknown token.
  const Tokenizer& smol = smollm2_from_gguf();
  EXPECT_EQ(smol.token_id("\xC3\xBF"), std::nullopt);  // "ÿ", the alphabet's spelling of byte 0xFF
  EXPECT_EQ(smol.encode("\xFF\xFF", false), (std::vector<int32_t>{0, 0}));  // byte-level BPE does not fuse_unk
  // Without an unknown token the byte is dropped, as the `tokenizers` BPE does.
  TokenizerSpec spec = smol.spec();
  spec.unk_id = -1;
  EXPECT_TRUE(make_tokenizer(spec)->encode("\xFF", false).empty());
}

TEST(TokenizerSentencePiece, VocabularyWithSpacesInsidePiecesIsEncodedWhole) {
  // A piece like "e▁" would let a merge cross a word boundary, so the word-by-word shortcut must
  // switch itself off. The extra piece is in no merge, so the ids must not change.
  TokenizerSpec spec = spec_from_json_fixture("tok512_llama_tokenizer.json");
  spec.vocab.push_back("e\xE2\x96\x81");
  const auto tok = make_tokenizer(spec);
  expect_ids_match(*tok, "tok512_llama");
}

}  // namespace
}  // namespace aqlm::test
