// A Job recorded in the run database through RunDatabaseSink: what the studio's dashboard reads
// back (layer table, step losses, evaluation, status and measured bits) equals what the
// pipeline returned; a stopped run is paused, a failed one carries its error.
#ifdef AQLM_HAVE_STORE
#include <gtest/gtest.h>

#include <filesystem>

#include "core/jobs/cancelled.h"
#include "core/jobs/job.h"
#include "core/store/artifact_checksum.h"
#include "core/store/run_database.h"
#include "core/store/run_database_sink.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

class DatabaseSink : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    model_ = *model;
    dir_ = test::temp_dir("db-sink");
    db_ = std::make_unique<store::RunDatabase>(store::RunDatabase::open(dir_ / "runs.sqlite"));
    store::ModelInfo info;
    info.name = "stories260K";
    info.path = model_;
    info.format = "llama2c";
    info.architecture = "llama";
    model_id_ = db_->add_model(info);
  }
  void TearDown() override {
    db_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  store::Id new_run(const PipelineSettings& s) {
    store::RunRequest r;
    r.model_id = model_id_;
    r.method = store::QuantMethod::Aqlm;
    r.config = s.aqlm.name();
    r.settings = s.to_json();
    r.output_dir = s.out_dir;
    return db_->create_run(r);
  }
  PipelineSettings settings(const std::string& out) const {
    PipelineSettings s = test::stories_settings(model_, dir_ / out);
    s.aqlm = AqlmConfig{1, 8, 4};
    s.nsamples = 8;
    s.heldout = 2;
    s.seqlen = 32;
    s.layer_max_epochs = 2;
    s.finetune_epochs = 1;
    s.finetune_batch = 4;
    s.eval_text = test::calibration_fixture();
    return s;
  }

  fs::path model_, dir_;
  std::unique_ptr<store::RunDatabase> db_;
  store::Id model_id_ = 0;
};

TEST_F(DatabaseSink, RecordsTheRunAsThePipelineReportsIt) {
  PipelineSettings s = settings("out");
  s.global_finetune_epochs = 2;  // 8 windows: one step per epoch
  const store::Id run = new_run(s);
  Job job(s);
  auto sink = std::make_shared<store::RunDatabaseSink>(*db_, run, "1x8g4");
  job.add_sink(sink);
  const PipelineResult r = job.run();

  const std::optional<store::Run> row = db_->find_run(run);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->status, store::RunStatus::Finished);
  EXPECT_DOUBLE_EQ(*row->bits_measured, r.measured_bits);
  EXPECT_EQ(*row->output_bytes, r.output_bytes);

  const std::vector<store::LayerMetric> table = db_->layer_table(run);
  ASSERT_EQ(table.size(), r.layers.size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].block, r.layers[i].block);
    EXPECT_EQ(table[i].layer, r.layers[i].layer);
    EXPECT_DOUBLE_EQ(table[i].relative_error, r.layers[i].relative_error);
    EXPECT_DOUBLE_EQ(table[i].bits, r.layers[i].bits);
    EXPECT_EQ(table[i].config, "1x8g4");
  }
  // Every quantizer step of block 2's up_proj, numbered 0.. across its epochs and phases, the
  // last one at the layer's final error (before fp16 rounding of its codebooks, so close).
  const std::vector<store::StepLoss> steps = db_->step_losses(run, store::LayerRef{2, "mlp.up_proj"});
  ASSERT_GT(steps.size(), 2u);
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].step, int64_t(i));
  EXPECT_NEAR(steps.back().loss, r.layers[2 * 7 + 5].relative_error, 0.05 * r.layers[2 * 7 + 5].relative_error);
  const std::vector<store::StepLoss> tuning = db_->step_losses(run, store::LayerRef{0, ""});
  EXPECT_FALSE(tuning.empty());
  for (const auto& t : tuning) EXPECT_TRUE(t.phase == "finetune" || t.phase == "finetune_heldout") << t.phase;
  // Global fine-tuning after the last block (block 5 of stories260K's 5): the train KL of each
  // step, the held-out KL of each epoch.
  const std::vector<store::StepLoss> global = db_->step_losses(run, store::LayerRef{5, ""});
  ASSERT_EQ(global.size(), 4u);
  int train = 0, heldout = 0;
  for (const auto& g : global) {
    train += g.phase == "global_finetune";
    heldout += g.phase == "global_finetune_heldout";
    EXPECT_GT(g.loss, 0.0);
  }
  EXPECT_EQ(train, 2);
  EXPECT_EQ(heldout, 2);

  const std::vector<store::Evaluation> evals = db_->evaluations_of_model(model_id_);
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals[0].run_id, run);
  EXPECT_EQ(evals[0].dataset, "stories260K_calibration");
  EXPECT_DOUBLE_EQ(evals[0].perplexity, r.evaluation->perplexity);

  // The layer table's loss is the quantizer's last step; its relative error the final one.
  EXPECT_DOUBLE_EQ(table[2 * 7 + 5].loss, steps.back().loss);

  // The output folder as the run's one artifact, keyed to its weights' SHA-256.
  const std::vector<store::Artifact> artifacts = db_->artifacts_of_run(run);
  ASSERT_EQ(artifacts.size(), 1u);
  EXPECT_EQ(artifacts[0].kind, "hf-aqlm");
  EXPECT_EQ(artifacts[0].path, fs::absolute(s.out_dir).lexically_normal());
  EXPECT_EQ(artifacts[0].bytes, r.output_bytes);
  EXPECT_EQ(artifacts[0].sha256, store::sha256_of_file(fs::path(s.out_dir) / "model.safetensors"));
}

TEST_F(DatabaseSink, StoppedRunIsPausedAndFailedRunKeepsItsError) {
  PipelineSettings s = settings("stopped");
  const store::Id run = new_run(s);
  {
    Job job(s);
    job.add_sink(std::make_shared<store::RunDatabaseSink>(*db_, run, "1x8g4"));
    job.add_sink(std::make_shared<CallbackSink>([&job](const ProgressEvent& e) {
      if (e.kind == EventKind::LayerFinished && e.block == 1) job.cancel();
    }));
    EXPECT_THROW(job.run(), Cancelled);
  }
  EXPECT_EQ(db_->find_run(run)->status, store::RunStatus::Paused);
  EXPECT_EQ(db_->layer_table(run).size(), 8u);  // block 0 and block 1's first layer

  s.resume = true;  // resumed: running again, then finished; the redone layers are not duplicated
  {
    Job job(s);
    job.add_sink(std::make_shared<store::RunDatabaseSink>(*db_, run, "1x8g4"));
    job.run();
  }
  EXPECT_EQ(db_->find_run(run)->status, store::RunStatus::Finished);
  EXPECT_EQ(db_->layer_table(run).size(), 35u);

  PipelineSettings bad = settings("bad");
  bad.calibration_files = {(dir_ / "missing.txt").string()};
  const store::Id failed = new_run(bad);
  Job job(bad);
  job.add_sink(std::make_shared<store::RunDatabaseSink>(*db_, failed, "1x8g4"));
  EXPECT_THROW(job.run(), Error);
  const std::optional<store::Run> row = db_->find_run(failed);
  EXPECT_EQ(row->status, store::RunStatus::Failed);
  EXPECT_EQ(row->error_message, (dir_ / "missing.txt").string() + ": calibration text not found");
}

}  // namespace
}  // namespace aqlm
#endif  // AQLM_HAVE_STORE
