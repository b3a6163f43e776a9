// The whole pipeline on stories260K (CPU): quality against the fp model and the scalar
// baselines, bits per parameter against the formula, and the written folder loaded back by
// our runtime measuring the perplexity the pipeline reported.
//
// Calibration: 64 windows of 128 tokens of TinyStories-like text sampled from the fp model
// (tests/fixtures/quant/pipeline/stories260K_calibration.txt); evaluation: the five stories of
// ../shared/data/tinystories-sample.txt (14 windows of 128 tokens), never seen in calibration.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/model/model.h"
#include "core/quant/pipeline.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSeqlen = 128;

double perplexity_of(const std::string& model_path, const std::string& text_path) {
  const auto model = load_model(model_path);
  EngineOptions eo;
  eo.context_length = int(kSeqlen);
  auto engine = create_engine(*model, eo);
  PerplexityOptions po;
  po.seqlen = int(kSeqlen);
  return evaluate_perplexity(*engine, *model->tokenizer, read_text_file(text_path), po).ppl;
}

// (16 g M 2^B + out (in/g) B M + 16 out) summed over the 35 linears, over their parameters
// (REFERENCE.md section 1), for stories260K: dim 64, 8 heads / 4 KV heads of 8, FFN 172.
double stories_formula_bits(int M, int B, int g) {
  const std::vector<std::pair<double, double>> shapes = {{64, 64}, {32, 64}, {32, 64}, {64, 64},
                                                         {172, 64}, {172, 64}, {64, 172}};
  double bits = 0, params = 0;
  for (const auto& [out, in] : shapes) {
    bits += 5 * (16.0 * g * M * std::pow(2.0, B) + out * (in / g) * B * M + 16 * out);
    params += 5 * out * in;
  }
  return bits / params;
}

class PipelineStories : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    const auto text = test::shared_path("data/tinystories-sample.txt");
    if (!model || !text) GTEST_SKIP() << "shared test data not found: stories260K or tinystories-sample.txt";
    model_ = *model;
    eval_text_ = *text;
    dir_ = test::temp_dir("pipeline-stories");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  PipelineResult run(const std::string& name, const std::function<void(PipelineSettings&)>& adjust,
                     test::RecordingSink* sink = nullptr) {
    PipelineSettings s = test::stories_settings(model_, dir_ / name);
    s.nsamples = 64;
    s.seqlen = kSeqlen;
    s.eval_text = eval_text_.string();
    adjust(s);
    return run_pipeline(s, sink);
  }

  fs::path model_, eval_text_, dir_;
};

TEST_F(PipelineStories, AqlmBeatsTheScalarBaselinesAndStaysNearTheFpModel) {
  const double fp = perplexity_of(model_.string(), eval_text_.string());

  test::RecordingSink sink;
  const PipelineResult wide = run("aqlm-2x8g4", [](PipelineSettings& s) { s.aqlm = AqlmConfig{2, 8, 4}; }, &sink);
  ASSERT_TRUE(wide.evaluation);
  // Two 256-word codebooks per matrix leave little to lose: within 10% of fp (the brief's bar;
  // measured +2.6% on this set-up).
  EXPECT_LT(wide.evaluation->perplexity, 1.10 * fp) << "fp " << fp;
  EXPECT_GT(wide.evaluation->perplexity, fp * 0.999) << "quantization cannot beat the fp model by much on unseen text";

  const PipelineResult narrow = run("aqlm-1x8g4", [](PipelineSettings& s) { s.aqlm = AqlmConfig{1, 8, 4}; });
  // Global fine-tuning (PV-Tuning's P step) of the same 1x8g4 run: KL against the fp model over
  // the calibration windows. Measured: held-out KL 0.645 -> 0.389, perplexity 13.01 -> 10.79.
  const PipelineResult tuned = run("aqlm-1x8g4-global", [](PipelineSettings& s) {
    s.aqlm = AqlmConfig{1, 8, 4};
    s.global_finetune_epochs = 4;
    s.global_finetune_learning_rate = 1e-3;
  });
  ASSERT_TRUE(tuned.global_finetune);
  EXPECT_LT(tuned.global_finetune->heldout_kl_after, 0.8 * tuned.global_finetune->heldout_kl_before);
  EXPECT_LT(tuned.evaluation->perplexity, 0.9 * narrow.evaluation->perplexity);
  EXPECT_EQ(tuned.measured_bits, narrow.measured_bits);
  EXPECT_FALSE(narrow.global_finetune);
  const PipelineResult gptq = run("gptq-w2g64", [](PipelineSettings& s) {
    s.method = PipelineMethod::Gptq;
    s.bits = 2;
    s.group_size = 64;
  });
  const PipelineResult rtn = run("rtn-w2g64", [](PipelineSettings& s) {
    s.method = PipelineMethod::Rtn;
    s.bits = 2;
    s.group_size = 64;
  });
  // 2-bit codes: one 256-word codebook of 4-vectors against 2-bit scalar grids of 64 weights.
  // Measured 13.0 vs 503 (GPTQ) and 519 (RTN); half of the baselines' is a safe bar.
  EXPECT_LT(narrow.evaluation->perplexity, 0.5 * gptq.evaluation->perplexity);
  EXPECT_LT(narrow.evaluation->perplexity, 0.5 * rtn.evaluation->perplexity);
  // GPTQ minimises the same output error RTN ignores: per layer it must not be worse.
  ASSERT_EQ(gptq.layers.size(), rtn.layers.size());
  double gptq_sum = 0, rtn_sum = 0;
  for (size_t i = 0; i < gptq.layers.size(); ++i) {
    gptq_sum += gptq.layers[i].relative_error;
    rtn_sum += rtn.layers[i].relative_error;
  }
  EXPECT_LT(gptq_sum, rtn_sum);

  // Bits: printed before the run (the Bits event) and measured on the file, equal the formula.
  EXPECT_NEAR(wide.predicted_bits, stories_formula_bits(2, 8, 4), 1e-12);
  EXPECT_NEAR(wide.measured_bits, stories_formula_bits(2, 8, 4), 1e-12);
  EXPECT_NEAR(narrow.predicted_bits, stories_formula_bits(1, 8, 4), 1e-12);
  EXPECT_NEAR(narrow.measured_bits, stories_formula_bits(1, 8, 4), 1e-12);
  const ProgressEvent* bits = sink.first(EventKind::Bits);
  ASSERT_NE(bits, nullptr);
  EXPECT_NEAR(bits->data.at("bits_per_parameter").get<double>(), stories_formula_bits(2, 8, 4), 1e-12);
  EXPECT_EQ(bits->data.at("quantized_parameters").get<int64_t>(), 5 * (2 * 4096 + 2 * 2048 + 3 * 11008));
  // GPTQ/RTN: 2 bits plus a 16-bit scale and a 2-bit zero point per 64 weights (the last group
  // of a 172-wide row has 44 weights).
  const double w2g64 = (5.0 * (2 * 64 * 64 * (2 + 18.0 / 64) + 2 * 32 * 64 * (2 + 18.0 / 64) +
                               2 * 172 * 64 * (2 + 18.0 / 64) + 64 * (172 * 2 + 3 * 18.0)) /
                        (5.0 * (2 * 4096 + 2 * 2048 + 3 * 11008)));
  EXPECT_NEAR(gptq.predicted_bits, w2g64, 1e-12);
  EXPECT_NEAR(rtn.measured_bits, w2g64, 1e-12);

  // The events a reader of the log relies on: one per layer and per block, in order.
  EXPECT_EQ(sink.count(EventKind::LayerFinished), 35);
  EXPECT_EQ(sink.count(EventKind::BlockFinished), 5);
  EXPECT_GT(sink.count(EventKind::FinetuneStep), 0);
  EXPECT_EQ(sink.events.front().kind, EventKind::RunStarted);
  EXPECT_EQ(sink.events.back().kind, EventKind::RunFinished);
  for (const auto& b : wide.blocks) {  // fine-tuning keeps the best held-out parameters
    ASSERT_TRUE(b.finetune_heldout_after);
    EXPECT_LE(*b.finetune_heldout_after, *b.finetune_heldout_before);
  }
  // No checkpoint is left behind after success.
  EXPECT_FALSE(fs::exists(dir_ / "aqlm-2x8g4.checkpoint"));
}

TEST_F(PipelineStories, WrittenFolderLoadsAndMeasuresWhatThePipelineReported) {
  const PipelineResult r = run("aqlm", [](PipelineSettings& s) {
    s.aqlm = AqlmConfig{2, 8, 4};
    s.nsamples = 16;
    s.finetune_epochs = 2;
  });
  ASSERT_TRUE(r.evaluation);
  const fs::path out = dir_ / "aqlm";
  const auto model = load_model(out.string());
  EXPECT_EQ(model->format, ModelFormat::HuggingFaceAqlm);
  ASSERT_TRUE(model->config.aqlm);
  EXPECT_EQ(model->config.aqlm->num_codebooks, 2);
  EXPECT_EQ(model->config.aqlm->nbits_per_codebook, 8);
  EXPECT_EQ(model->config.aqlm->in_group_size, 4);
  EXPECT_EQ(model->weights.get("model.layers.4.mlp.down_proj.codes").shape, (std::vector<int64_t>{64, 43, 2}));
  EXPECT_EQ(model->weights.get("model.layers.0.input_layernorm.weight").dtype, DType::F16);
  // The same weights through the same engine: the same number, to the last bit or nearly.
  EXPECT_NEAR(perplexity_of(out.string(), eval_text_.string()), r.evaluation->perplexity, 1e-9 * r.evaluation->perplexity);
  int64_t bytes = 0;
  for (const auto& [name, content] : test::folder_contents(out)) bytes += int64_t(content.size());
  EXPECT_EQ(r.output_bytes, bytes);

  const nlohmann::json studio = nlohmann::json::parse(read_text_file(out / "aqlm_studio.json"));
  EXPECT_EQ(studio.at("method"), "aqlm");
  EXPECT_EQ(studio.at("config"), "2x8g4");
  EXPECT_DOUBLE_EQ(studio.at("results").at("evaluation").at("perplexity").get<double>(), r.evaluation->perplexity);
  EXPECT_EQ(studio.at("results").at("layers").size(), 35u);
}

}  // namespace
}  // namespace aqlm
