// Bad tokenizer files give one clear aqlm::Error naming the file and the reason.
#include <gtest/gtest.h>

#include <fstream>

#include "core/common/error.h"
#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

using nlohmann::json;

// Runs `fn`, expects an aqlm::Error, and returns its message.
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "multi-line message: " << message;
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected aqlm::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected aqlm::Error, nothing was thrown";
  return "";
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

std::filesystem::path write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(TokenizerErrors, TruncatedLlama2cFile) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  const std::string bytes = read_text_file(path);
  const auto dir = temp_dir("tok-truncated");
  // Cut inside the text of a token near the end, inside the header, and inside a length field.
  for (size_t keep : {bytes.size() - 3, size_t(2), size_t(4 + 8 + 5 + 2)}) {
    const auto cut = write_bytes(dir / "cut.bin", bytes.substr(0, keep)).string();
    const std::string msg = error_of([&] { tokenizer_spec_from_llama2c(cut, 512); });
    EXPECT_HAS(msg, cut);
    EXPECT_HAS(msg, "truncated");
    EXPECT_HAS(msg, "the file has " + std::to_string(keep));
  }
}

TEST(TokenizerErrors, Llama2cVocabSizeMismatch) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  const std::string file = path.string();
  const std::string fewer = error_of([&] { tokenizer_spec_from_llama2c(file, 500); });
  EXPECT_HAS(fewer, file);
  EXPECT_HAS(fewer, "vocab size mismatch");
  const std::string more = error_of([&] { tokenizer_spec_from_llama2c(file, 600); });
  EXPECT_HAS(more, file);
  EXPECT_HAS(more, "truncated");
  EXPECT_EQ(tokenizer_spec_from_llama2c(file, 0).vocab.size(), 512u);  // 0: read to the end
}

TEST(TokenizerErrors, Llama2cMissingOrGarbageFile) {
  const auto dir = temp_dir("tok-garbage");
  const std::string missing = (dir / "nope.bin").string();
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_llama2c(missing, 512); }), missing);
  const std::string garbage = write_bytes(dir / "text.bin", "this is not a tokenizer at all").string();
  const std::string msg = error_of([&] { tokenizer_spec_from_llama2c(garbage, 512); });
  EXPECT_HAS(msg, garbage);
  EXPECT_HAS(msg, "not a llama2.c tokenizer");
}

json small_bpe_json() {
  return json::parse(R"({
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120": 3}, "merges": ["a b"]},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "added_tokens": [{"id": 4, "content": "<|end|>", "special": true}]
  })");
}

TEST(TokenizerErrors, SmallHandMadeTokenizerJsonLoads) {
  // The base of the broken variants below is itself fine.
  const auto tok = make_tokenizer(tokenizer_spec_from_hf_json(small_bpe_json(), nullptr, "small.json"));
  EXPECT_EQ(tok->vocab_size(), 5);
  EXPECT_EQ(tok->encode("ab<|end|>", false, true), (std::vector<int32_t>{2, 4}));
}

TEST(TokenizerErrors, UnknownModelType) {
  json tj = small_bpe_json();
  tj["model"]["type"] = "WordPiece";
  const std::string msg = error_of([&] { tokenizer_spec_from_hf_json(tj, nullptr, "model/tokenizer.json"); });
  EXPECT_HAS(msg, "model/tokenizer.json");
  EXPECT_HAS(msg, "unsupported tokenizer model type 'WordPiece'");
}

TEST(TokenizerErrors, TokenizerJsonVocabWithAGap) {
  json tj = small_bpe_json();
  tj["added_tokens"][0]["id"] = 9;  // ids 4..8 have no token
  const std::string msg = error_of([&] { tokenizer_spec_from_hf_json(tj, nullptr, "gap/tokenizer.json"); });
  EXPECT_HAS(msg, "gap/tokenizer.json");
  EXPECT_HAS(msg, "vocab size mismatch");
  EXPECT_HAS(msg, "id 4 has no token");
}

TEST(TokenizerErrors, OtherBrokenTokenizerJson) {
  const std::string where = "broken/tokenizer.json";
  auto load = [&](const json& tj) { return error_of([&] { tokenizer_spec_from_hf_json(tj, nullptr, where); }); };
  EXPECT_HAS(load(json::array()), "no \"model\" object");
  json bad_merge = small_bpe_json();
  bad_merge["model"]["merges"] = {"a b c"};
  EXPECT_HAS(load(bad_merge), "merge 'a b c' is not two pieces");
  json bad_id = small_bpe_json();
  bad_id["model"]["vocab"]["a"] = "zero";
  EXPECT_HAS(load(bad_id), "vocab entry 'a' has no valid id");
  json bad_pre = small_bpe_json();
  bad_pre["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_HAS(load(bad_pre), "unsupported");
  json bad_pattern = small_bpe_json();
  bad_pattern["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  EXPECT_HAS(load(bad_pattern), "unsupported pre_tokenizer Split pattern");
  json single_word = small_bpe_json();
  single_word["added_tokens"][0]["single_word"] = true;
  EXPECT_HAS(load(single_word), "single_word=true, which is not supported");
  json bad_config_token = small_bpe_json();
  const json config = {{"bos_token", "<s>"}};
  const std::string msg = error_of([&] { tokenizer_spec_from_hf_json(bad_config_token, &config, where); });
  EXPECT_HAS(msg, "the bos_token '<s>' is not in the vocabulary");
  for (const std::string& m : {load(json::array()), load(bad_merge), load(bad_id), msg}) EXPECT_HAS(m, where);
  // A merge that names a piece the vocabulary lacks is caught when the tokenizer is built.
  json unknown_piece = small_bpe_json();
  unknown_piece["model"]["merges"] = {"a z"};
  const TokenizerSpec spec = tokenizer_spec_from_hf_json(unknown_piece, nullptr, where);
  EXPECT_HAS(error_of([&] { make_tokenizer(spec); }), "uses 'z', which is not in the vocabulary");
}

TEST(TokenizerErrors, GgufKeysVocabSizeMismatchAndUnknownKinds) {
  const std::string where = "model.gguf";
  json keys = read_json(text_fixture("mistral_gguf_tokenizer.json"));
  keys["tokenizer.ggml.scores"].erase(keys["tokenizer.ggml.scores"].begin());
  std::string msg = error_of([&] { tokenizer_spec_from_gguf(keys, where); });
  EXPECT_HAS(msg, where);
  EXPECT_HAS(msg, "vocab size mismatch: 32000 tokens but 31999 scores");

  json types = read_json(text_fixture("mistral_gguf_tokenizer.json"));
  types["tokenizer.ggml.token_type"].push_back(1);
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_gguf(types, where); }), "32000 tokens but 32001 token types");

  json bert = {{"tokenizer.ggml.model", "bert"}, {"tokenizer.ggml.tokens", {"a"}}};
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_gguf(bert, where); }), "unsupported tokenizer model 'bert'");
  json pre = {{"tokenizer.ggml.model", "gpt2"},
              {"tokenizer.ggml.pre", "deepseek-coder"},
              {"tokenizer.ggml.tokens", {"a"}},
              {"tokenizer.ggml.merges", json::array()}};
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_gguf(pre, where); }), "unsupported pre-tokenizer 'deepseek-coder'");
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_gguf(json::object(), where); }), "no tokenizer.ggml.model");
  json bos = read_json(text_fixture("mistral_gguf_tokenizer.json"));
  bos["tokenizer.ggml.bos_token_id"] = 40000;
  EXPECT_HAS(error_of([&] { tokenizer_spec_from_gguf(bos, where); }), "BOS token id 40000 is outside the vocabulary");
  json wrong_type = read_json(text_fixture("mistral_gguf_tokenizer.json"));
  wrong_type["tokenizer.ggml.tokens"][5] = 17;
  msg = error_of([&] { tokenizer_spec_from_gguf(wrong_type, where); });
  EXPECT_HAS(msg, where);
  EXPECT_HAS(msg, "malformed");
}

TEST(TokenizerErrors, BadIdsAtRunTime) {
  const Tokenizer& tok = mistral_from_json();
  EXPECT_HAS(error_of([&] { tok.token_bytes(32000); }), "token id 32000 is outside the vocabulary (32000 tokens)");
  EXPECT_HAS(error_of([&] { tok.decode({1, -5}); }), "token id -5");
  TokenizerSpec spec = tok.spec();
  spec.add_eos = true;
  spec.eos_id = -1;
  EXPECT_HAS(error_of([&] { make_tokenizer(spec); }), "adds EOS but has no EOS token");
}

}  // namespace
}  // namespace aqlm::test
