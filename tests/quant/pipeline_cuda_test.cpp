// The whole pipeline with --device cuda on stories260K: its quality against the CPU pipeline
// (the same algorithm; float rounding makes the two runs drift apart a little), and a run stopped
// after k layers or inside fine-tuning (Ctrl-C) that resumes to the same bytes as an
// uninterrupted GPU run. Skips without a GPU or without the shared model.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/common/error.h"
#include "core/jobs/cancelled.h"
#include "core/quant/pipeline.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

class PipelineCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = cuda_quantization_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << why;
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    model_ = *model;
    dir_ = test::temp_dir("pipeline-cuda");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // pipeline_resume_test.cpp's small complete run: AQLM 1x8g4 with fine-tuning and evaluation.
  PipelineSettings settings(const std::string& out, ComputeDevice device) const {
    PipelineSettings s = test::stories_settings(model_, dir_ / out);
    s.aqlm = AqlmConfig{1, 8, 4};
    s.nsamples = 12;
    s.heldout = 3;
    s.seqlen = 64;
    s.layer_max_epochs = 3;
    s.finetune_epochs = 2;
    s.finetune_batch = 4;
    s.eval_text = test::calibration_fixture();
    s.device = device;
    return s;
  }

  fs::path model_, dir_;
};

TEST_F(PipelineCuda, QualityMatchesTheCpuPipeline) {
  const PipelineResult cpu = run_pipeline(settings("cpu", ComputeDevice::Cpu));
  const PipelineResult gpu = run_pipeline(settings("gpu", ComputeDevice::Cuda));
  ASSERT_TRUE(cpu.evaluation && gpu.evaluation);
  ASSERT_EQ(gpu.layers.size(), cpu.layers.size());
  double cpu_sum = 0, gpu_sum = 0;
  for (size_t i = 0; i < cpu.layers.size(); ++i) {
    cpu_sum += cpu.layers[i].relative_error;
    gpu_sum += gpu.layers[i].relative_error;
  }
  std::printf("stories260K 1x8g4: perplexity CPU %.4f GPU %.4f; mean layer error CPU %.5f GPU %.5f\n",
              cpu.evaluation->perplexity, gpu.evaluation->perplexity, cpu_sum / double(cpu.layers.size()),
              gpu_sum / double(gpu.layers.size()));
  // Same algorithm, different rounding: a few percent either way (the CPU run's own spread over
  // seeds is larger than that).
  EXPECT_NEAR(gpu.evaluation->perplexity, cpu.evaluation->perplexity, 0.03 * cpu.evaluation->perplexity);
  EXPECT_NEAR(gpu_sum, cpu_sum, 0.15 * cpu_sum);
  EXPECT_NEAR(gpu.measured_bits, cpu.measured_bits, 1e-12);
}

TEST_F(PipelineCuda, StoppedRunsResumeToTheSameBytes) {
  const PipelineResult whole = run_pipeline(settings("whole", ComputeDevice::Cuda));
  for (const std::string stop : {"layers", "finetune"}) {
    PipelineSettings s = settings("stopped-" + stop, ComputeDevice::Cuda);
    test::RecordingSink first;
    int layers = 0, steps = 0;
    first.stop_when = [&](const ProgressEvent& e) {
      return stop == "layers" ? e.kind == EventKind::LayerFinished && ++layers == 10
                              : e.kind == EventKind::FinetuneStep && e.block == 1 && ++steps == 2;
    };
    EXPECT_THROW(run_pipeline(s, &first, &first.cancel), Cancelled);
    EXPECT_FALSE(fs::exists(s.out_dir));
    s.resume = true;
    test::RecordingSink resumed;
    const PipelineResult r = run_pipeline(s, &resumed);
    EXPECT_TRUE(r.resumed);
    test::expect_same_folders(dir_ / "whole", dir_ / ("stopped-" + stop));
  }
  // A checkpoint made on the GPU is refused on the CPU (its rounding would differ).
  PipelineSettings s = settings("mixed", ComputeDevice::Cuda);
  test::RecordingSink first;
  first.stop_when = [](const ProgressEvent& e) { return e.kind == EventKind::LayerFinished; };
  EXPECT_THROW(run_pipeline(s, &first, &first.cancel), Cancelled);
  s.device = ComputeDevice::Cpu;
  s.resume = true;
  try {
    run_pipeline(s);
    FAIL() << "a GPU checkpoint was resumed on the CPU";
  } catch (const Cancelled&) {
    FAIL() << "cancelled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aqlm
