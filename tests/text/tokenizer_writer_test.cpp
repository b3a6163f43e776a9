// The HF writers: every spec we can load, written as tokenizer.json and read back, tokenizes the
// reference strings to the reference ids. With AQLM_TOKENIZER_EXPORT_DIR set, the written files
// are kept there so that `tokenizer_reference.py check-written DIR` can load them with the
// `tokenizers` library itself.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

void export_if_asked(const nlohmann::json& tj, const std::string& file_name) {
  const char* dir = std::getenv("AQLM_TOKENIZER_EXPORT_DIR");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  write_file_atomic(std::filesystem::path(dir) / file_name, tj.dump());
}

// Writes `spec`, reads it back through the loader, and checks ids and decodes against `case_name`.
void round_trip(const TokenizerSpec& spec, const std::string& case_name, const std::string& source) {
  const nlohmann::json tj = tokenizer_spec_to_hf_json(spec);
  const nlohmann::json config = tokenizer_spec_to_hf_config(spec, "");
  export_if_asked(tj, case_name + "." + source + ".tokenizer.json");
  export_if_asked(config, case_name + "." + source + ".tokenizer_config.json");
  const auto tok = make_tokenizer(tokenizer_spec_from_hf_json(tj, &config, "written " + source));
  EXPECT_EQ(tok->vocab_size(), int(spec.vocab.size()));
  EXPECT_EQ(tok->bos_id(), spec.bos_id);
  EXPECT_EQ(tok->eos_id(), spec.eos_id);
  EXPECT_EQ(tok->spec().add_bos, spec.add_bos);
  expect_ids_match(*tok, case_name);
  expect_decode_matches(*tok, case_name);
}

TEST(TokenizerWriter, SmolLM2FromGgufRoundTrips) {
  round_trip(spec_from_gguf_fixture("smollm2_gguf_tokenizer.json"), "smollm2", "gguf");
}

TEST(TokenizerWriter, MistralFromGgufScoresRoundTrips) {
  // No merges in the GGUF: the writer derives them from the scores.
  round_trip(spec_from_gguf_fixture("mistral_gguf_tokenizer.json"), "mistral", "gguf");
}

TEST(TokenizerWriter, MistralFromJsonRoundTrips) {
  round_trip(spec_from_json_fixture("mistral_tokenizer.json"), "mistral", "json");
}

TEST(TokenizerWriter, Llama2cBinRoundTripsAsLlamaStyleJson) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/tok512.bin");
  const TokenizerSpec spec = tokenizer_spec_from_llama2c(path.string(), 512);
  const nlohmann::json tj = tokenizer_spec_to_hf_json(spec);
  // Spaces are written as "▁", like every SentencePiece tokenizer.json.
  EXPECT_EQ(tj["model"]["vocab"]["\xE2\x96\x81the"], 265);
  EXPECT_EQ(tj["normalizer"]["normalizers"][0]["type"], "Prepend");
  round_trip(spec, "tok512_llama", "bin");
}

TEST(TokenizerWriter, PreTokenizerStructures) {
  TokenizerSpec spec = spec_from_gguf_fixture("smollm2_gguf_tokenizer.json");
  nlohmann::json tj = tokenizer_spec_to_hf_json(spec);
  EXPECT_EQ(tj["pre_tokenizer"]["pretokenizers"][0]["type"], "Digits");
  EXPECT_EQ(tj["pre_tokenizer"]["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(tj["decoder"]["type"], "ByteLevel");
  for (PreTokenizer pre : {PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2}) {
    spec.pre_tokenizer = pre;
    spec.ignore_merges = pre == PreTokenizer::Llama3;
    spec.nfc = pre == PreTokenizer::Qwen2;
    const TokenizerSpec back = tokenizer_spec_from_hf_json(tokenizer_spec_to_hf_json(spec), nullptr, "written");
    EXPECT_EQ(back.pre_tokenizer, pre);
    EXPECT_EQ(back.ignore_merges, spec.ignore_merges);
    EXPECT_EQ(back.nfc, spec.nfc);
  }
}

TEST(TokenizerWriter, ConfigFields) {
  const TokenizerSpec spec = spec_from_gguf_fixture("smollm2_gguf_tokenizer.json");
  const std::string tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}";
  const nlohmann::json config = tokenizer_spec_to_hf_config(spec, tmpl, 8192);
  EXPECT_EQ(config["bos_token"], "<|im_start|>");
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_EQ(config["unk_token"], "<|endoftext|>");
  EXPECT_EQ(config["pad_token"], "<|im_end|>");
  EXPECT_EQ(config["add_bos_token"], false);
  EXPECT_EQ(config["chat_template"], tmpl);
  EXPECT_EQ(config["model_max_length"], 8192);
  EXPECT_EQ(config["added_tokens_decoder"]["1"]["content"], "<|im_start|>");
  EXPECT_EQ(config["added_tokens_decoder"]["1"]["special"], true);
  EXPECT_EQ(config["added_tokens_decoder"].size(), 17u);
  const nlohmann::json bare = tokenizer_spec_to_hf_config(spec, "");
  EXPECT_FALSE(bare.contains("chat_template"));
  EXPECT_FALSE(bare.contains("model_max_length"));
}

}  // namespace
}  // namespace aqlm::test
