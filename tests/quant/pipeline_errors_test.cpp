// Bad input to the pipeline, each refused with one line that says what and why, before any
// work is done where that is possible: a group size that does not divide a layer's inputs,
// calibration text that is empty or too short, NaN/Inf in a weight, an existing output folder,
// bad settings. (A write failure in the middle of the output is tested through the CLI in
// tests/jobs, where a child process can run under a file-size limit.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/common/error.h"
#include "core/quant/pipeline.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class PipelineErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    model_ = *model;
    dir_ = test::temp_dir("pipeline-errors");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  PipelineSettings settings(const std::string& out) const {
    PipelineSettings s = test::stories_settings(model_, dir_ / out);
    s.method = PipelineMethod::Rtn;
    s.nsamples = 4;
    s.seqlen = 32;
    return s;
  }
  // A copy of stories260K.bin (and its tokenizer) with one float replaced.
  fs::path poisoned_model(int64_t float_index, float value) const {
    const fs::path copy = dir_ / "poisoned" / "stories260K.bin";
    fs::create_directories(copy.parent_path());
    fs::copy_file(model_, copy);
    fs::copy_file(model_.parent_path() / "tok512.bin", copy.parent_path() / "tok512.bin");
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(28 + float_index * 4);  // after the 7 int32 header fields
    f.write(reinterpret_cast<const char*>(&value), 4);
    return copy;
  }

  fs::path model_, dir_;
};

TEST_F(PipelineErrors, GroupSizeThatDoesNotDivideALayerIsNamedUpFront) {
  PipelineSettings s = settings("g8");
  s.method = PipelineMethod::Aqlm;
  s.aqlm = AqlmConfig{2, 8, 8};  // down_proj has 172 inputs
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            "model.layers.0.mlp.down_proj: 172 input features are not a multiple of the group size 8 of 2x8g8; use a "
            "group size that divides every layer's inputs (4 does)");
  EXPECT_FALSE(fs::exists(s.resolved_checkpoint_dir())) << "nothing is started before the check";
}

TEST_F(PipelineErrors, EmptyOrShortCalibrationTextSaysHowManyTokensAreNeeded) {
  const fs::path empty = dir_ / "empty.txt", short_text = dir_ / "short.txt";
  std::ofstream(empty) << "\n\n";
  std::ofstream(short_text) << "Once upon a time, there was a little dog.\n";
  PipelineSettings s = settings("calib");
  s.nsamples = 16;
  s.heldout = 2;
  s.seqlen = 64;
  s.calibration_files = {empty.string()};
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            empty.string() + ": the calibration text is empty (16 calibration windows + 2 held-out windows of 64 "
                             "tokens need 1152 tokens)");
  s.calibration_files = {short_text.string()};
  const std::string e = error_of([&] { run_pipeline(s); });
  EXPECT_NE(e.find(short_text.string() + ": the calibration text has only "), std::string::npos) << e;
  EXPECT_NE(e.find(" tokens, but 16 calibration windows + 2 held-out windows of 64 tokens need 1152 tokens"),
            std::string::npos)
      << e;
  EXPECT_FALSE(fs::exists(s.out_dir));
}

TEST_F(PipelineErrors, NanOrInfInAWeightNamesTheTensor) {
  // v_proj of layer 2, row 5, column 17: llama2.c stores v rows as they are (q and k rows are
  // permuted to the Hugging Face layout on load, v's are not).
  const int64_t dim = 64, kv = 32, vocab = 512, layers = 5;
  const int64_t wv = vocab * dim + layers * dim + layers * dim * dim + layers * kv * dim;
  PipelineSettings s = settings("nan");
  s.model = poisoned_model(wv + 2 * kv * dim + 5 * dim + 17, std::numeric_limits<float>::quiet_NaN()).string();
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            s.model + ": tensor model.layers.2.self_attn.v_proj.weight holds nan at [5, 17]; the weights must be finite "
                      "to be quantized");
  fs::remove_all(dir_ / "poisoned");
  // The final norm (after every layer) with +Inf at index 3.
  const int64_t final_norm = vocab * dim + layers * dim + layers * dim * dim + 2 * layers * kv * dim +
                             layers * dim * dim + layers * dim + 3 * layers * 172 * dim;
  s.model = poisoned_model(final_norm + 3, std::numeric_limits<float>::infinity()).string();
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            s.model + ": tensor model.norm.weight holds inf at [3]; the weights must be finite to be quantized");
}

TEST_F(PipelineErrors, ExistingOutputFolderIsRefusedUnlessOverwrite) {
  PipelineSettings s = settings("taken");
  fs::create_directories(s.out_dir);
  std::ofstream(fs::path(s.out_dir) / "keep.txt") << "mine";
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            s.out_dir + ": already exists; choose another output folder or pass --overwrite");
  EXPECT_TRUE(fs::exists(fs::path(s.out_dir) / "keep.txt"));
  s.overwrite = true;
  run_pipeline(s);
  EXPECT_FALSE(fs::exists(fs::path(s.out_dir) / "keep.txt"));  // replaced as a whole
  EXPECT_TRUE(fs::exists(fs::path(s.out_dir) / "model.safetensors"));
  for (const auto& e : fs::directory_iterator(dir_))  // no staging or old copies left beside it
    EXPECT_EQ(e.path().filename().string().rfind(".taken", 0), std::string::npos) << e.path();
}

TEST_F(PipelineErrors, BadSettingsNameTheOption) {
  PipelineSettings s = settings("bad");
  s.seqlen = 1024;  // stories260K was trained on 512
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: --seqlen 1024 exceeds the model's context of 512 tokens");
  s = settings("bad");
  s.method = PipelineMethod::Gptq;
  s.bits = 9;
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: --bits 9 for gptq; 2 to 8 are supported");
  s = settings("bad");
  s.method = PipelineMethod::Aqlm;
  s.aqlm = AqlmConfig{2, 8, 5};
  EXPECT_EQ(error_of([&] { run_pipeline(s); }),
            "quantize: --config 2x8g5 is not supported (1-8 codebooks of 4-16 bits, groups of 4, 8 or 16)");
  s = settings("bad");
  s.nsamples = 0;
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: --nsamples 0 must be at least 1");
  s = settings("bad");
  s.method = PipelineMethod::Rtn;
  s.global_finetune_epochs = 2;
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: global fine-tuning (--global-epochs) needs --method aqlm");
  s = settings("bad");
  s.method = PipelineMethod::Aqlm;
  s.global_finetune_epochs = 2;
  s.global_finetune_learning_rate = 0;
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: global fine-tuning learning rate 0 must be positive");
  s = settings("");
  s.out_dir.clear();
  EXPECT_EQ(error_of([&] { run_pipeline(s); }), "quantize: no output folder given (--out DIR)");
  EXPECT_EQ(error_of([] { parse_pipeline_method("awq"); }), "unknown quantization method 'awq' (choose aqlm, gptq or rtn)");
}

TEST(PipelineSettingsJson, RoundTripAndWrongTypes) {
  PipelineSettings s;
  s.model = "m.gguf";
  s.out_dir = "out";
  s.method = PipelineMethod::Gptq;
  s.aqlm = AqlmConfig{1, 16, 8};
  s.calibration_files = {"a.txt", "b.jsonl"};
  s.nsamples = 7;
  s.seed = 99;
  s.finetune = false;
  s.max_ram_gb = 1.5;
  s.global_finetune_epochs = 3;
  s.global_finetune_learning_rate = 3e-4;
  s.global_finetune_batch = 5;
  const PipelineSettings back = PipelineSettings::from_json(s.to_json());
  EXPECT_EQ(back.to_json(), s.to_json());
  EXPECT_EQ(back.aqlm, s.aqlm);
  EXPECT_EQ(back.method, PipelineMethod::Gptq);
  EXPECT_EQ(back.global_finetune_epochs, 3);
  EXPECT_EQ(back.global_finetune_batch, 5);
  EXPECT_EQ(error_of([] { PipelineSettings::from_json({{"nsamples", "many"}}); }),
            "job settings: field 'nsamples' has the wrong type (\"many\")");
  EXPECT_EQ(error_of([] { PipelineSettings::from_json({{"config", "2x8"}}); }),
            "AQLM config '2x8' is not of the form MxBgG (e.g. 1x16g8 or 2x8g8)");
  // Only what decides the output identifies a checkpoint.
  PipelineSettings other = s;
  other.max_ram_gb = 0;
  other.out_dir = "elsewhere";
  other.eval_text = "wiki.txt";
  EXPECT_EQ(other.result_settings(), s.result_settings());
  other.seqlen = 256;
  EXPECT_NE(other.result_settings(), s.result_settings());
}

}  // namespace
}  // namespace aqlm
