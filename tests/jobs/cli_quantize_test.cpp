// aqlm-cli quantize and quantize-layer as child processes, the way the studio runs them: a
// real Ctrl-C (SIGINT) that leaves a resumable checkpoint whose resumed output is byte for byte
// an uninterrupted run's; a write that fails half-way (file-size limit) leaving nothing that
// looks like a model; the printed bits and the layer command's JSON.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/jobs/progress_event.h"
#include "core/quant/layer_problem.h"
#include "core/quant/rtn.h"
#include "tests/jobs/cli_child.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;
using test::Child;
using test::spawn;
using test::wait_exit;

class CliQuantize : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    model_ = model->string();
    dir_ = test::temp_dir("cli-quantize");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::vector<std::string> aqlm_args(const std::string& out) const {
    return {"quantize", model_, "--config", "1x8g4", "--calib", test::calibration_fixture(), "--nsamples", "12",
            "--heldout", "3", "--seqlen", "64", "--layer-epochs", "3", "--epochs", "2", "--finetune-batch", "4",
            "--eval-text", test::calibration_fixture(), "--out", (dir_ / out).string()};
  }

  std::string model_;
  fs::path dir_;
};

TEST_F(CliQuantize, CtrlCLeavesACheckpointThatResumesToTheSameBytes) {
  const Child whole = spawn(aqlm_args("whole"), dir_, "whole");
  ASSERT_EQ(wait_exit(whole), 0) << test::file_bytes(whole.err);
  // The bits printed before the run: REFERENCE.md's formula for 1x8g4 on stories260K's 35
  // linears, (16*4*256 + out*(in/4)*8 + 16*out) summed over (out*in) summed = 4.7429.
  EXPECT_NE(test::file_bytes(whole.err).find("predicted: 4.7429 bits per parameter over 226560 quantized parameters"),
            std::string::npos)
      << test::file_bytes(whole.err);

  std::vector<std::string> args = aqlm_args("stopped");
  const fs::path log = dir_ / "log.jsonl";
  args.insert(args.end(), {"--log-json", log.string()});
  const Child stopped = spawn(args, dir_, "stopped");
  ProgressLogReader reader(log.string());
  int layers = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (layers < 9 && std::chrono::steady_clock::now() < deadline) {
    for (const auto& e : reader.read_new()) layers += e.kind == EventKind::LayerFinished;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(layers, 9) << test::file_bytes(stopped.err);
  ::kill(stopped.pid, SIGINT);
  EXPECT_EQ(wait_exit(stopped), 130) << test::file_bytes(stopped.err);
  const std::string err = test::file_bytes(stopped.err);
  EXPECT_NE(err.find("aqlm-cli: stopped; the checkpoint is in " + (dir_ / "stopped").string() +
                     ".checkpoint: run the same command with --resume to continue"),
            std::string::npos)
      << err;
  EXPECT_FALSE(fs::exists(dir_ / "stopped"));
  std::vector<ProgressEvent> rest = reader.read_new();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().kind, EventKind::RunCancelled);

  std::vector<std::string> resume_args = aqlm_args("stopped");
  resume_args.push_back("--resume");
  const Child resumed = spawn(resume_args, dir_, "resumed");
  ASSERT_EQ(wait_exit(resumed), 0) << test::file_bytes(resumed.err);
  EXPECT_NE(test::file_bytes(resumed.err).find("(from the checkpoint)"), std::string::npos);
  test::expect_same_folders(dir_ / "whole", dir_ / "stopped");
  EXPECT_FALSE(fs::exists(dir_ / "stopped.checkpoint"));
}

TEST_F(CliQuantize, WriteFailureLeavesNothingThatLooksComplete) {
  const std::vector<std::string> args = {"quantize", model_, "--method", "rtn", "--bits", "4", "--calib",
                                         test::calibration_fixture(), "--nsamples", "4", "--seqlen", "32", "--out",
                                         (dir_ / "model").string()};
  // 300 kB: the checkpoint's files (each under 100 kB) fit, the 525 kB model.safetensors does not.
  const Child limited = spawn(args, dir_, "limited", 300 * 1000);
  EXPECT_EQ(wait_exit(limited), 1);
  const std::string err = test::file_bytes(limited.err);
  EXPECT_NE(err.find("aqlm-cli: error: "), std::string::npos) << err;
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("File too large"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir_ / "model"));
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    EXPECT_NE(e.path().filename(), "config.json") << e.path();
    EXPECT_NE(e.path().filename(), "model.safetensors") << e.path();
  }
  // Every block was finished and checkpointed: --resume only writes the output.
  std::vector<std::string> resume = args;
  resume.push_back("--resume");
  const Child again = spawn(resume, dir_, "again");
  ASSERT_EQ(wait_exit(again), 0) << test::file_bytes(again.err);
  EXPECT_TRUE(fs::exists(dir_ / "model" / "model.safetensors"));
  EXPECT_NE(test::file_bytes(again.err).find("resuming from"), std::string::npos);
}

TEST_F(CliQuantize, ExistingOutputIsRefusedWithExitCode1) {
  fs::create_directories(dir_ / "taken");
  const Child c = spawn({"quantize", model_, "--out", (dir_ / "taken").string()}, dir_, "taken");
  EXPECT_EQ(wait_exit(c), 1);
  EXPECT_EQ(test::file_bytes(c.err), "aqlm-cli: error: " + (dir_ / "taken").string() +
                                         ": already exists; choose another output folder or pass --overwrite\n");
}

TEST(CliQuantizeLayer, ReportsTheRelativeErrorOfTheLayer) {
  const fs::path dir = test::temp_dir("cli-layer");
  LayerProblem p;
  p.name = "layer";
  p.out_features = 32;
  p.in_features = 64;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0, 1);
  p.weight.resize(32 * 64);
  for (float& w : p.weight) w = float(normal(rng));
  std::vector<double> x(256 * 64);
  for (double& v : x) v = normal(rng);
  p.xtx.assign(64 * 64, 0.0);
  for (int t = 0; t < 256; ++t)
    for (int i = 0; i < 64; ++i)
      for (int j = 0; j < 64; ++j) p.xtx[size_t(i * 64 + j)] += x[size_t(t * 64 + i)] * x[size_t(t * 64 + j)] / 256;
  save_layer_problem(p, (dir / "layer.safetensors").string());

  const Child rtn = spawn({"quantize-layer", "--tensors", (dir / "layer.safetensors").string(), "--method", "rtn",
                           "--bits", "3", "--group-size", "16", "--json"},
                          dir, "rtn");
  ASSERT_EQ(wait_exit(rtn), 0) << test::file_bytes(rtn.err);
  const nlohmann::json j = nlohmann::json::parse(test::file_bytes(rtn.out));
  RtnOptions o;
  o.bits = 3;
  o.group_size = 16;
  const double expected = p.relative_error(quantize_rtn(p, o).weight);
  EXPECT_NEAR(j.at("relative_error").get<double>(), expected, 1e-12 * expected);
  EXPECT_EQ(j.at("config"), "w3g16");
  EXPECT_NEAR(j.at("bits_per_parameter").get<double>(), 3 + 19.0 / 16, 1e-12);
  EXPECT_GE(j.at("seconds").get<double>(), 0.0);

  const Child aqlm = spawn({"quantize-layer", "--tensors", (dir / "layer.safetensors").string(), "--config", "2x8g8",
                            "--layer-epochs", "4", "--json"},
                           dir, "aqlm");
  ASSERT_EQ(wait_exit(aqlm), 0) << test::file_bytes(aqlm.err);
  const nlohmann::json a = nlohmann::json::parse(test::file_bytes(aqlm.out));
  // 65,536 codeword pairs for 256 groups of 8: far below RTN's 3-bit error.
  EXPECT_LT(a.at("relative_error").get<double>(), expected);
  EXPECT_GT(a.at("relative_error").get<double>(), 0.0);

  const Child missing = spawn({"quantize-layer", "--tensors", (dir / "none.safetensors").string()}, dir, "missing");
  EXPECT_EQ(wait_exit(missing), 1);
  EXPECT_NE(test::file_bytes(missing.err).find("aqlm-cli: error: " + (dir / "none.safetensors").string()),
            std::string::npos)
      << test::file_bytes(missing.err);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aqlm
