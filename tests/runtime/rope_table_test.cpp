#include "core/runtime/rope_table.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

// Configurations and their float64 values from forward_reference.py rope.
TEST(RopeTable, InverseFrequenciesAndAnglesMatchTheReference) {
  const auto cases = nlohmann::json::parse(read_text_file(test::source_path("tests/fixtures/runtime/rope_cases.json")));
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    ModelConfig config;
    config.head_dim = c.at("head_dim").get<int>();
    config.rope_theta = c.at("rope_theta").get<double>();
    if (!c.at("rope_scaling").is_null()) {
      const auto& s = c.at("rope_scaling");
      config.rope_scaling.type = s.at("rope_type").get<std::string>();
      config.rope_scaling.factor = s.at("factor").get<double>();
      config.rope_scaling.low_freq_factor = s.value("low_freq_factor", 1.0);
      config.rope_scaling.high_freq_factor = s.value("high_freq_factor", 4.0);
      config.rope_scaling.original_max_position_embeddings = s.value("original_max_position_embeddings", 8192);
    }
    const std::string name = c.at("name").get<std::string>();
    const auto ref = c.at("inv_freq").get<std::vector<double>>();
    const auto inv = rope_inverse_frequencies(config);
    ASSERT_EQ(inv.size(), ref.size()) << name;
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(inv[i], ref[i], 1e-13 * ref[i]) << name << " " << i;

    // Angles are formed in double, so position 4000 is as exact as float allows (a float32
    // product of position and frequency would be off by up to ~2e-4 there).
    const RopeTable table(config, 4001);
    const auto cos_ref = c.at("cos_4000").get<std::vector<double>>();
    const auto sin_ref = c.at("sin_4000").get<std::vector<double>>();
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(table.cos(4000)[i], cos_ref[i], 1e-7) << name << " " << i;
      EXPECT_NEAR(table.sin(4000)[i], sin_ref[i], 1e-7) << name << " " << i;
    }
  }
}

TEST(RopeTable, Llama3ScalingKeepsHighFrequenciesAndDividesLowOnes) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  const auto scaled = rope_inverse_frequencies(c);
  c.rope_scaling = {};
  const auto plain = rope_inverse_frequencies(c);
  EXPECT_EQ(scaled.front(), plain.front());             // wavelength 2 pi: kept
  EXPECT_NEAR(scaled.back(), plain.back() / 8.0, 1e-20);  // longest wavelength: divided by the factor
}

TEST(RopeTable, UnknownScalingIsRefused) {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_scaling.type = "yarn";
  try {
    rope_inverse_frequencies(c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "rope_scaling type 'yarn' is not supported (supported: llama3, linear)");
  }
}

}  // namespace
}  // namespace aqlm
