// aqlm-cli finetune as a child process on stories260K: a compressed model tuned against the
// original gets a lower held-out KL and a lower TinyStories perplexity, keeps its codes, and
// records the step in aqlm_studio.json; bad input fails with one line and writes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/text/tokenizer.h"
#include "tests/jobs/cli_child.h"
#include "tests/quant/pipeline_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;
using test::Child;
using test::spawn;
using test::wait_exit;

double tinystories_perplexity(const fs::path& model_path, const fs::path& text) {
  const auto model = load_model(model_path.string());
  EngineOptions eo;
  eo.context_length = 128;
  auto engine = create_engine(*model, eo);
  PerplexityOptions po;
  po.seqlen = 128;
  return evaluate_perplexity(*engine, *model->tokenizer, read_text_file(text.string()), po).ppl;
}

std::string tensor_bytes(const Model& m, const std::string& name) {
  const TensorView& t = m.weights.get(name);
  return std::string(static_cast<const char*>(t.data), t.nbytes());
}

class CliFinetune : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    if (!model) return;
    dir_ = test::temp_dir("cli-finetune");
    // The student: stories260K at 1x8g4 with a short pipeline, measured on the calibration text.
    const Child q = spawn({"quantize", model->string(), "--config", "1x8g4", "--calib", test::calibration_fixture(),
                           "--nsamples", "12", "--heldout", "3", "--seqlen", "64", "--layer-epochs", "3", "--epochs",
                           "2", "--finetune-batch", "4", "--eval-text", test::calibration_fixture(), "--out",
                           (dir_ / "student").string()},
                          dir_, "quantize");
    quantize_status_ = wait_exit(q);
    quantize_err_ = test::file_bytes(q.err);
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    const auto model = test::shared_path("models/stories260K/stories260K.bin");
    const auto text = test::shared_path("data/tinystories-sample.txt");
    if (!model || !text) GTEST_SKIP() << "shared test data not found: stories260K or tinystories-sample.txt";
    teacher_ = model->string();
    eval_text_ = *text;
    ASSERT_EQ(quantize_status_, 0) << quantize_err_;
  }
  std::vector<std::string> args(const std::string& out) const {
    return {"finetune", (dir_ / "student").string(), "--teacher", teacher_, "--calib", test::calibration_fixture(),
            "--nsamples", "32", "--heldout", "4", "--seqlen", "128", "--epochs", "4", "--lr", "1e-3", "--batch", "8",
            "--out", (dir_ / out).string()};
  }
  // Runs aqlm-cli ARGS, expecting exit status `status` and `message` in its stderr.
  void expect_failure(const std::vector<std::string>& a, const std::string& name, const std::string& message) {
    const Child c = spawn(a, dir_, name);
    EXPECT_EQ(wait_exit(c), 1) << test::file_bytes(c.err);
    EXPECT_NE(test::file_bytes(c.err).find(message), std::string::npos) << test::file_bytes(c.err);
  }

  static inline fs::path dir_;
  static inline int quantize_status_ = -1;
  static inline std::string quantize_err_;
  std::string teacher_;
  fs::path eval_text_;
};

TEST_F(CliFinetune, LowersTheKlAndThePerplexityAndKeepsTheCodes) {
  std::vector<std::string> a = args("tuned");
  a.push_back("--json");
  const Child c = spawn(a, dir_, "tuned");
  ASSERT_EQ(wait_exit(c), 0) << test::file_bytes(c.err);
  const auto printed = nlohmann::json::parse(test::file_bytes(c.out));
  const double before = printed.at("heldout_kl_before"), after = printed.at("heldout_kl_after");
  EXPECT_GT(before, 0.1);
  EXPECT_LT(after, 0.85 * before);
  EXPECT_EQ(printed.at("steps"), 16);

  const double ppl_student = tinystories_perplexity(dir_ / "student", eval_text_);
  const double ppl_tuned = tinystories_perplexity(dir_ / "tuned", eval_text_);
  EXPECT_LT(ppl_tuned, 0.95 * ppl_student) << "student " << ppl_student << ", tuned " << ppl_tuned;

  const auto student = load_model((dir_ / "student").string());
  const auto tuned = load_model((dir_ / "tuned").string());
  ASSERT_TRUE(tuned->config.aqlm.has_value());
  for (const std::string layer : {"model.layers.0.self_attn.q_proj", "model.layers.4.mlp.down_proj"}) {
    EXPECT_TRUE(tensor_bytes(*student, layer + ".codes") == tensor_bytes(*tuned, layer + ".codes")) << layer;
    EXPECT_FALSE(tensor_bytes(*student, layer + ".codebooks") == tensor_bytes(*tuned, layer + ".codebooks")) << layer;
  }
  EXPECT_FALSE(tensor_bytes(*student, "model.norm.weight") == tensor_bytes(*tuned, "model.norm.weight"));

  std::ifstream in(dir_ / "tuned" / "aqlm_studio.json");
  const auto record = nlohmann::json::parse(in);
  EXPECT_EQ(record.at("config"), "1x8g4");
  EXPECT_EQ(record.at("global_finetune").at("results").at("heldout_kl_after"), after);
  EXPECT_EQ(record.at("global_finetune").at("settings").at("learning_rate"), 1e-3);
  // The student's perplexity was measured before this step: it moved under global_finetune.
  EXPECT_FALSE(record.at("results").contains("evaluation"));
  EXPECT_GT(record.at("global_finetune").at("evaluation_before").at("perplexity").get<double>(), 1.0);
}

TEST_F(CliFinetune, BadInputFailsWithOneLineAndWritesNothing) {
  fs::create_directories(dir_ / "exists");
  expect_failure(args("exists"), "exists", (dir_ / "exists").string() + ": already exists; choose another output folder or pass --overwrite");

  std::vector<std::string> a = args("dense-student");
  a[1] = teacher_;
  expect_failure(a, "dense-student", "is not an AQLM model");
  a = args("aqlm-teacher");
  a[3] = (dir_ / "student").string();
  expect_failure(a, "aqlm-teacher", "the teacher is itself AQLM-compressed");
  {
    std::ofstream empty(dir_ / "empty.txt");
  }
  a = args("no-text");
  a[5] = (dir_ / "empty.txt").string();
  expect_failure(a, "no-text", "empty.txt");
  a = args("bad-lr");
  a[15] = "0";
  expect_failure(a, "bad-lr", "learning rate");
  for (const char* out : {"dense-student", "aqlm-teacher", "no-text", "bad-lr"}) EXPECT_FALSE(fs::exists(dir_ / out)) << out;
}

}  // namespace
}  // namespace aqlm
