#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/model/model_config.h"
#include "tests/support/test_paths.h"

using namespace aqlm;

TEST(ModelConfig, ReadsSmolLM2StyleLlamaConfig) {
  const auto j = nlohmann::json::parse(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama",
    "hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,
    "num_key_value_heads":3,"vocab_size":49152,"max_position_embeddings":8192,"rope_theta":100000,
    "rms_norm_eps":1e-5,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2})");
  const ModelConfig c = ModelConfig::from_hf_json(j, "config.json");
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.kv_dim(), 192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  // SmolLM2-135M has 134,515,008 parameters (HF model card / num_parameters()).
  EXPECT_EQ(c.num_parameters(), 134515008);
  const ModelConfig back = ModelConfig::from_hf_json(c.to_hf_json(), "round trip");
  EXPECT_EQ(back.num_parameters(), c.num_parameters());
  EXPECT_EQ(back.rope_theta, 100000);
}

TEST(ModelConfig, RejectsUnsupportedArchitectureNamingIt) {
  const auto j = nlohmann::json::parse(R"({"model_type":"gpt_neox","hidden_size":8})");
  try {
    ModelConfig::from_hf_json(j, "x/config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gpt_neox"), std::string::npos) << m;
    EXPECT_NE(m.find("llama"), std::string::npos) << m;
  }
}

TEST(ModelConfig, RejectsHeadsNotDividing) {
  const auto j = nlohmann::json::parse(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,
    "num_hidden_layers":1,"num_attention_heads":8,"num_key_value_heads":3,"vocab_size":10})");
  EXPECT_THROW(ModelConfig::from_hf_json(j, "config.json"), Error);
}
