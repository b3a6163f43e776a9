#pragma once
// Shared by the tokenizer tests: the fixtures written by scripts/reference/tokenizer_reference.py
// and the tokenizers built from them.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm::test {

inline nlohmann::json read_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(read_text_file(path));
}

inline std::filesystem::path text_fixture(const std::string& name) {
  return source_path("tests/fixtures/text/" + name);
}

// Reference ids, splits and decodes (tokenizer_cases.json), parsed once.
inline const nlohmann::json& tokenizer_cases() {
  static const nlohmann::json cases = read_json(text_fixture("tokenizer_cases.json"));
  return cases;
}

inline std::vector<std::string> case_strings() { return tokenizer_cases()["strings"].get<std::vector<std::string>>(); }

inline TokenizerSpec spec_from_json_fixture(const std::string& name, const std::string& config_name = "") {
  const nlohmann::json tj = read_json(text_fixture(name));
  if (config_name.empty()) return tokenizer_spec_from_hf_json(tj, nullptr, name);
  const nlohmann::json config = read_json(text_fixture(config_name));
  return tokenizer_spec_from_hf_json(tj, &config, name);
}

inline TokenizerSpec spec_from_gguf_fixture(const std::string& name) {
  return tokenizer_spec_from_gguf(read_json(text_fixture(name)), name);
}

// Loading the big vocabularies takes a moment: build each tokenizer once per test program.
inline const Tokenizer& smollm2_from_gguf() {
  static const auto t = make_tokenizer(spec_from_gguf_fixture("smollm2_gguf_tokenizer.json"));
  return *t;
}
inline const Tokenizer& smollm2_from_json() {
  static const auto t = make_tokenizer(spec_from_json_fixture("smollm2_tokenizer.json", "smollm2_tokenizer_config.json"));
  return *t;
}
inline const Tokenizer& mistral_from_json() {
  static const auto t = make_tokenizer(spec_from_json_fixture("mistral_tokenizer.json"));
  return *t;
}
inline const Tokenizer& mistral_from_gguf() {
  static const auto t = make_tokenizer(spec_from_gguf_fixture("mistral_gguf_tokenizer.json"));
  return *t;
}
inline const Tokenizer& tok512_from_json() {
  static const auto t = make_tokenizer(spec_from_json_fixture("tok512_llama_tokenizer.json"));
  return *t;
}

// Compares every string and every (add_special, parse_special) combination with the reference.
inline void expect_ids_match(const Tokenizer& tok, const std::string& case_name) {
  const nlohmann::json& expected = tokenizer_cases()[case_name];
  const std::vector<std::string> strings = case_strings();
  for (int add = 0; add <= 1; ++add) {
    for (int parse = 0; parse <= 1; ++parse) {
      const std::string key = "ids_add" + std::to_string(add) + "_parse" + std::to_string(parse);
      for (size_t i = 0; i < strings.size(); ++i) {
        EXPECT_EQ(tok.encode(strings[i], add == 1, parse == 1), expected[key][i].get<std::vector<int32_t>>())
            << case_name << " " << key << " string " << i << ": " << testing::PrintToString(strings[i]);
      }
    }
  }
}

inline void expect_decode_matches(const Tokenizer& tok, const std::string& case_name) {
  const nlohmann::json& expected = tokenizer_cases()[case_name];
  const size_t n = case_strings().size();
  for (size_t i = 0; i < n; ++i) {
    const auto ids = expected["ids_add1_parse1"][i].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids, true), expected["decode"][i].get<std::string>()) << case_name << " string " << i;
    EXPECT_EQ(tok.decode(ids, false), expected["decode_keep_special"][i].get<std::string>())
        << case_name << " string " << i << " (special tokens kept)";
  }
}

}  // namespace aqlm::test
