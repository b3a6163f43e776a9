// `aqlm-cli convert` of the default GGUF to a Hugging Face folder: the folder must run exactly
// as the GGUF does. The F32 folder holds the GGUF's dequantized values bit for bit, so the
// logits must be bit-identical too (same engine, same arithmetic order); an F16 folder rounds
// every weight once (relative 2^-11), which moves logits by far less than 5e-2 of their range.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/model/hf_folder.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

std::vector<float> prompt_logits(const Model& model, const std::vector<int32_t>& ids) {
  auto engine = create_engine(model, EngineOptions{Device::Cpu, 64});
  std::vector<float> logits(ids.size() * size_t(model.config.vocab_size));
  engine->forward(ids, logits.data(), /*all_logits=*/true);
  return logits;
}

TEST(ConvertedModel, SmolLM2HfFolderGivesTheGgufLogits) {
  AQLM_REQUIRE_SMOLLM2(gguf);
  const auto source = load_model(gguf.string());
  const std::filesystem::path dir = test::temp_dir("converted");
  save_hf_folder(*source, (dir / "f32").string());
  SaveOptions f16;
  f16.dtype = DType::F16;
  save_hf_folder(*source, (dir / "f16").string(), f16);

  const std::vector<int32_t> ids = source->tokenizer->encode("The capital of France is Paris. The capital of Germany is");
  const std::vector<float> expected = prompt_logits(*source, ids);

  const auto as_f32 = load_model((dir / "f32").string());
  EXPECT_EQ(as_f32->tokenizer->encode("The capital of France is"), source->tokenizer->encode("The capital of France is"));
  const std::vector<float> got = prompt_logits(*as_f32, ids);
  ASSERT_EQ(got.size(), expected.size());
  size_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) differing += got[i] != expected[i];
  EXPECT_EQ(differing, 0u) << "the F32 folder must give bit-identical logits";

  const auto as_f16 = load_model((dir / "f16").string());
  const std::vector<float> rounded = prompt_logits(*as_f16, ids);
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < rounded.size(); ++i) {
    max_diff = std::max(max_diff, double(std::fabs(rounded[i] - expected[i])));
    max_ref = std::max(max_ref, double(std::fabs(expected[i])));
  }
  EXPECT_LT(max_diff / max_ref, 5e-2);
  EXPECT_GT(max_diff, 0.0) << "an F16 folder that matches exactly was not rounded";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aqlm
