// Checkpoint and resume: a run stopped after k layers (or inside block fine-tuning) and
// resumed writes byte-identical output files to an uninterrupted run; activations spilled to
// disk change nothing; o_proj's statistics are taken with q/k/v already quantized; a
// checkpoint of other settings, or one left without --resume, is refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/thread_pool.h"
#include "core/jobs/cancelled.h"
#include "core/model/model.h"
#include "core/quant/calibration.h"
#include "core/quant/layer_problem.h"
#include "core/quant/pipeline.h"
#include "core/quant/pipeline_activations.h"
#include "core/quant/pipeline_block.h"
#include "core/quant/pipeline_xtx.h"
#include "core/quant/rtn.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

class PipelineResume : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    model_ = *model;
    dir_ = test::temp_dir("pipeline-resume");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Small but complete: AQLM with fine-tuning, held-out windows and an evaluation.
  PipelineSettings aqlm_settings(const std::string& out) const {
    PipelineSettings s = test::stories_settings(model_, dir_ / out);
    s.aqlm = AqlmConfig{1, 8, 4};
    s.nsamples = 12;
    s.heldout = 3;
    s.seqlen = 64;
    s.layer_max_epochs = 3;
    s.finetune_epochs = 2;
    s.finetune_batch = 4;
    s.eval_text = test::calibration_fixture();
    return s;
  }

  // Runs until `stop_when` fires, checks that the run stopped resumably, then resumes it.
  PipelineResult stop_and_resume(PipelineSettings s, const std::function<bool(const ProgressEvent&)>& stop_when,
                                 test::RecordingSink& resumed) {
    test::RecordingSink first;
    first.stop_when = stop_when;
    EXPECT_THROW(run_pipeline(s, &first, &first.cancel), Cancelled);
    EXPECT_FALSE(fs::exists(s.out_dir)) << "a stopped run must not leave an output folder";
    EXPECT_TRUE(fs::exists(fs::path(s.resolved_checkpoint_dir()) / "checkpoint.json"));
    s.resume = true;
    return run_pipeline(s, &resumed);
  }

  fs::path model_, dir_;
};

TEST_F(PipelineResume, StoppedAfterKLayersOrInsideFinetuningResumesToTheSameBytes) {
  const PipelineResult whole = run_pipeline(aqlm_settings("whole"));

  // Stopped after 10 layers: block 0 done, block 1 after q, k and v.
  int layers = 0;
  test::RecordingSink resumed;
  const PipelineResult after_layers = stop_and_resume(
      aqlm_settings("after-layers"),
      [&](const ProgressEvent& e) { return e.kind == EventKind::LayerFinished && ++layers == 10; }, resumed);
  EXPECT_TRUE(after_layers.resumed);
  test::expect_same_folders(dir_ / "whole", dir_ / "after-layers");
  // The resumed run redid nothing it had: block 1's first three layers came from the checkpoint.
  int restored = 0, quantized = 0;
  for (const auto& e : resumed.events) {
    if (e.kind != EventKind::LayerFinished) continue;
    (e.data.at("restored").get<bool>() ? restored : quantized)++;
    if (e.data.at("restored").get<bool>()) EXPECT_EQ(e.block, 1);
  }
  EXPECT_EQ(restored, 3);
  EXPECT_EQ(quantized, 35 - 10);
  ASSERT_EQ(after_layers.layers.size(), whole.layers.size());
  for (size_t i = 0; i < whole.layers.size(); ++i)
    EXPECT_EQ(after_layers.layers[i].relative_error, whole.layers[i].relative_error) << i;
  EXPECT_EQ(after_layers.evaluation->perplexity, whole.evaluation->perplexity);

  // Stopped in the middle of block 2's fine-tuning: the block is tuned again from its layers.
  test::RecordingSink resumed2;
  stop_and_resume(
      aqlm_settings("in-finetune"),
      [](const ProgressEvent& e) { return e.kind == EventKind::FinetuneStep && e.block == 2 && e.step == 2; }, resumed2);
  test::expect_same_folders(dir_ / "whole", dir_ / "in-finetune");
}

TEST_F(PipelineResume, StoppedInsideGlobalFinetuningResumesToTheSameBytes) {
  const auto global = [&](const std::string& out) {
    PipelineSettings s = aqlm_settings(out);
    s.global_finetune_epochs = 2;
    s.global_finetune_batch = 4;
    return s;
  };
  test::RecordingSink sink;
  const PipelineResult whole = run_pipeline(global("whole-global"), &sink);
  ASSERT_TRUE(whole.global_finetune);
  EXPECT_EQ(whole.global_finetune->steps, 2 * 3);  // 12 windows in batches of 4, 2 epochs
  int global_steps = 0;
  for (const auto& e : sink.events) global_steps += e.kind == EventKind::FinetuneStep && e.phase == "global";
  EXPECT_EQ(global_steps, 6);
  // Every block is in the checkpoint when the global phase stops; the resumed run tunes again.
  test::RecordingSink resumed;
  stop_and_resume(
      global("in-global"),
      [](const ProgressEvent& e) { return e.kind == EventKind::FinetuneStep && e.phase == "global" && e.step == 4; },
      resumed);
  test::expect_same_folders(dir_ / "whole-global", dir_ / "in-global");
  // A checkpoint made without global fine-tuning is not resumed with it.
  PipelineSettings plain = aqlm_settings("plain");
  plain.keep_checkpoint = true;
  run_pipeline(plain);
  fs::remove_all(dir_ / "plain");
  PipelineSettings with_global = global("plain");
  with_global.resume = true;
  try {
    run_pipeline(with_global);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the checkpoint was made with other settings: global_finetune_"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(PipelineResume, SpilledActivationsGiveTheSameOutput) {
  PipelineSettings s = test::stories_settings(model_, dir_ / "memory");
  s.method = PipelineMethod::Gptq;
  s.bits = 3;
  s.nsamples = 8;
  s.seqlen = 32;
  run_pipeline(s);
  s.out_dir = (dir_ / "disk").string();
  s.max_ram_gb = 1e-9;  // not one store fits: all three go to scratch files
  test::RecordingSink sink;
  run_pipeline(s, &sink);
  bool spilled = false;
  for (const auto& e : sink.events) spilled |= e.kind == EventKind::Message && e.message.find("0 in memory, 3 in") != std::string::npos;
  EXPECT_TRUE(spilled);
  test::expect_same_folders(dir_ / "memory", dir_ / "disk");
}

// o_proj's XTX is taken on the block with q/k/v quantized, gate/up's with o_proj quantized too,
// down_proj's with everything before it. RTN's reconstruction ignores XTX, so each reported
// relative error pins down which XTX the pipeline used.
TEST_F(PipelineResume, EachGroupSeesThePreviousGroupsQuantized) {
  PipelineSettings s = test::stories_settings(model_, dir_ / "rtn");
  s.method = PipelineMethod::Rtn;
  s.bits = 2;
  s.group_size = 16;
  s.nsamples = 6;
  s.seqlen = 32;
  const PipelineResult r = run_pipeline(s);

  const auto model = load_model(model_.string());
  const BlockShape shape = BlockShape::from_config(model->config);
  CalibrationOptions co;
  co.train_windows = 6;
  co.seqlen = 32;
  co.seed = 0;
  const CalibrationSet set = make_calibration_set(*model->tokenizer, s.calibration_files, co);
  ActivationStore inputs(6, 32, shape.hidden);
  const std::vector<float> embedding = model->weights.to_f32("model.embed_tokens.weight");
  std::vector<float> window(inputs.window_values());
  for (int64_t w = 0; w < 6; ++w) {
    for (int64_t t = 0; t < 32; ++t)
      std::copy_n(embedding.begin() + set.train_window(w)[t] * shape.hidden, shape.hidden, window.begin() + t * shape.hidden);
    inputs.write(w, window.data());
  }
  const BlockWeights<float> fp = load_block_weights(*model, 0);
  BlockWeights<float> sequential = fp;  // filled group by group with the RTN weights
  for (float& v : sequential.input_norm) v = f16_to_f32(f32_to_f16(v));
  for (float& v : sequential.post_attention_norm) v = f16_to_f32(f32_to_f16(v));
  BlockPass pass(shape, 2, ThreadPool::global(), nullptr);
  const auto xtx_of = [&](const BlockWeights<float>& w, BlockLinear l) {
    XtxAccumulator acc(shape.in_features(l));
    pass.run(w, inputs, 0, 6, nullptr, &acc, l);
    return acc.mean();
  };
  const auto rtn = [&](BlockLinear l) {
    LayerProblem p;
    p.name = "test";
    p.out_features = shape.out_features(l);
    p.in_features = shape.in_features(l);
    p.weight = fp.linear[size_t(l)];
    p.xtx.assign(size_t(p.in_features * p.in_features), 0.0);
    RtnOptions o;
    o.bits = 2;
    o.group_size = 16;
    std::vector<float> q = quantize_rtn(p, o).weight;
    for (float& v : q) v = f16_to_f32(f32_to_f16(v));  // as the output stores them
    return q;
  };
  const auto relative_error = [&](BlockLinear l, const std::vector<double>& xtx, const std::vector<float>& q) {
    LayerProblem p;
    p.out_features = shape.out_features(l);
    p.in_features = shape.in_features(l);
    p.weight = fp.linear[size_t(l)];
    p.xtx = xtx;
    return p.relative_error(q);
  };
  const std::vector<std::vector<BlockLinear>> groups = {{kQProj, kKProj, kVProj}, {kOProj}, {kGateProj, kUpProj}, {kDownProj}};
  size_t index = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::vector<double> xtx = g == 0 ? xtx_of(fp, kQProj) : xtx_of(sequential, groups[g][0]);
    const std::vector<double> fp_xtx = xtx_of(fp, groups[g][0]);
    for (BlockLinear l : groups[g]) {
      const std::vector<float> q = rtn(l);
      const double expected = relative_error(l, xtx, q);
      EXPECT_NEAR(r.layers[index].relative_error, expected, 1e-9 * expected) << r.layers[index].layer;
      if (g > 0) {  // the fp block's statistics would give another number: the test can tell
        const double with_fp = relative_error(l, fp_xtx, q);
        EXPECT_GT(std::abs(with_fp - expected), 1e-4 * expected) << r.layers[index].layer;
      }
      sequential.linear[size_t(l)] = q;
      ++index;
    }
  }
}

TEST_F(PipelineResume, RefusesACheckpointOfOtherSettingsOrWithoutResume) {
  PipelineSettings s = test::stories_settings(model_, dir_ / "out");
  s.method = PipelineMethod::Rtn;
  s.nsamples = 4;
  s.seqlen = 32;
  test::RecordingSink stop;
  stop.stop_when = [](const ProgressEvent& e) { return e.kind == EventKind::LayerFinished; };
  EXPECT_THROW(run_pipeline(s, &stop, &stop.cancel), Cancelled);
  const std::string checkpoint = s.resolved_checkpoint_dir();
  EXPECT_EQ(checkpoint, (dir_ / "out.checkpoint").string());

  try {
    run_pipeline(s);
    FAIL() << "an existing checkpoint was overwritten without --resume or --overwrite";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), checkpoint +
                                         ": a checkpoint of an earlier run is there; pass --resume to continue it or "
                                         "--overwrite to start over");
  }
  PipelineSettings other = s;
  other.resume = true;
  other.seed = 5;
  try {
    run_pipeline(other);
    FAIL() << "a checkpoint of another seed was resumed";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), checkpoint +
                                         "/checkpoint.json: the checkpoint was made with other settings: seed "
                                         "(checkpoint: 0, now: 5); resume with the same settings, or start over with "
                                         "--overwrite");
  }
  // Settings that do not change the output may differ: the activation budget, for one.
  PipelineSettings budget = s;
  budget.resume = true;
  budget.max_ram_gb = 1e-9;
  run_pipeline(budget);
  EXPECT_TRUE(fs::exists(s.out_dir));
  EXPECT_FALSE(fs::exists(checkpoint));
}

}  // namespace
}  // namespace aqlm
