// The real SmolLM2 GGUF, read by the model room's GGUF reader, gives the same tokenizer as the
// committed fixture of its tokenizer.ggml.* keys (so the fixture is what the app sees).
#include <gtest/gtest.h>

#include "core/model/gguf.h"
#include "tests/text/tokenizer_test_util.h"

namespace aqlm::test {
namespace {

TEST(TokenizerGgufFile, SmolLM2FileGivesTheReferenceIds) {
  AQLM_REQUIRE_SMOLLM2(path);
  const GgufFile file(path.string());
  nlohmann::json keys = nlohmann::json::object();
  for (const GgufKv& kv : file.metadata()) {
    if (kv.key.rfind("tokenizer.ggml.", 0) == 0) keys[kv.key] = kv.value;
  }
  EXPECT_EQ(keys, read_json(text_fixture("smollm2_gguf_tokenizer.json")));
  const auto tok = make_tokenizer(tokenizer_spec_from_gguf(keys, path.string()));
  expect_ids_match(*tok, "smollm2");
}

}  // namespace
}  // namespace aqlm::test
