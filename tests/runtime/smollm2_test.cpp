// SmolLM2-135M-Instruct (GGUF, Q4_1/Q8_0 dequantized exactly to fp32 by the loader) against
// an independent numpy float64 forward over gguf.quants.dequantize of the same file
// (scripts/reference/forward_reference.py smollm2 -> tests/fixtures/runtime/smollm2_*).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/runtime/engine.h"
#include "tests/runtime/runtime_test_models.h"

namespace aqlm {
namespace {

struct PromptReference {
  std::vector<int32_t> ids;
  std::vector<std::vector<double>> logits;  // [ids, vocab]
  std::vector<int32_t> top5;
};

PromptReference read_prompt_reference() {
  const auto dir = test::source_path("tests/fixtures/runtime");
  const auto j = nlohmann::json::parse(read_text_file(dir / "smollm2_reference.json"));
  PromptReference r;
  r.ids = j.at("prompt_ids").get<std::vector<int32_t>>();
  r.top5 = j.at("prompt_top5_next").get<std::vector<int32_t>>();
  const auto shape = j.at("prompt_logits_shape").get<std::vector<size_t>>();
  std::ifstream in(dir / j.at("prompt_logits_file").get<std::string>(), std::ios::binary);
  std::vector<float> flat(shape[0] * shape[1]);
  in.read(reinterpret_cast<char*>(flat.data()), std::streamsize(flat.size() * sizeof(float)));
  EXPECT_TRUE(in.good()) << "truncated smollm2_prompt_logits.f32";
  for (size_t t = 0; t < shape[0]; ++t) r.logits.emplace_back(flat.begin() + long(t * shape[1]), flat.begin() + long((t + 1) * shape[1]));
  return r;
}

// Tolerance: the brief's 1e-3 of max |ref| over each position's logits (the measure is
// max |ours - ref| / max |ref|). Measured ~1e-5: fp32 through 30 layers.
constexpr double kTolerance = 1e-3;

TEST(SmolLM2, PromptLogitsMatchTheFloat64Reference) {
  AQLM_REQUIRE_SMOLLM2(path);
  const auto model = test::load_test_weights(path);
  const auto ref = read_prompt_reference();
  auto engine = create_engine(*model);
  EXPECT_EQ(engine->context_length(), 4096);  // 8192 in the file, capped by default
  const size_t V = size_t(model->config.vocab_size);
  std::vector<float> logits(ref.ids.size() * V);
  engine->forward(ref.ids, logits.data(), true);
  double worst = 0;
  for (size_t t = 0; t < ref.ids.size(); ++t) {
    const double err = test::max_relative_error(logits.data() + t * V, ref.logits[t]);
    EXPECT_LT(err, kTolerance) << "position " << t;
    worst = std::max(worst, err);
  }
  std::printf("SmolLM2 prompt logits: max |ours - ref| / max |ref| = %.2e\n", worst);
  // The model's answer: the most likely next token (" Berlin") agrees.
  const float* last = logits.data() + (ref.ids.size() - 1) * V;
  EXPECT_EQ(int32_t(std::max_element(last, last + V) - last), ref.top5[0]);
}

TEST(SmolLM2, DecodingTokenByTokenMatchesTheReferenceToo) {
  AQLM_REQUIRE_SMOLLM2(path);
  const auto model = test::load_test_weights(path);
  const auto ref = read_prompt_reference();
  auto engine = create_engine(*model);
  std::vector<float> logits(size_t(model->config.vocab_size));
  const size_t half = ref.ids.size() / 2;
  engine->forward(std::span<const int32_t>(ref.ids.data(), half), logits.data());
  for (size_t t = half; t < ref.ids.size(); ++t) {
    engine->forward(std::span<const int32_t>(&ref.ids[t], 1), logits.data());
    EXPECT_LT(test::max_relative_error(logits.data(), ref.logits[t]), kTolerance) << "position " << t;
  }
}

}  // namespace
}  // namespace aqlm
