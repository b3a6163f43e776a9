// The queries on a version-1 database written by Python's sqlite3 module, checked against
// answers computed in plain Python (scripts/reference/store_v1_fixture.py). Stored
// doubles come back bit for bit, so most comparisons are exact; only SQL aggregates
// (avg, total) may sum in another order than Python and get a relative 1e-12.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/store/run_database.h"
#include "tests/store/store_test_util.h"
#include "tests/support/test_paths.h"

namespace aqlm::store {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class ReferenceDatabase : public ::testing::Test {
 protected:
  void SetUp() override {
    expected_ = json::parse(read_text_file(test::source_path("tests/fixtures/store/v1_reference_expected.json")));
    file_ = test::temp_dir("store-reference") / "runs.sqlite";
    fs::copy_file(test::source_path("tests/fixtures/store/v1_reference.sqlite"), file_);
  }
  fs::path file_;
  json expected_;
};

// Summation order may differ between SQLite and Python: a few ulps over ~20 terms.
constexpr double kAggregateTolerance = 1e-12;

void expect_real(double actual, const json& expected, const std::string& what) {
  if (expected.is_null()) {
    EXPECT_TRUE(std::isnan(actual)) << what << ": expected NaN (stored NULL), got " << actual;
  } else {
    EXPECT_EQ(actual, expected.get<double>()) << what;
  }
}

template <typename T>
void expect_optional(const std::optional<T>& actual, const json& expected, const std::string& what) {
  if (expected.is_null()) {
    EXPECT_FALSE(actual.has_value()) << what;
  } else {
    ASSERT_TRUE(actual.has_value()) << what;
    EXPECT_EQ(*actual, expected.get<T>()) << what;
  }
}

std::int64_t ms(Timestamp t) { return t.time_since_epoch().count(); }

void expect_evaluation(const Evaluation& e, const json& x) {
  const std::string what = "evaluation " + std::to_string(e.id);
  EXPECT_EQ(e.id, x["id"].get<Id>());
  EXPECT_EQ(e.model_id, x["model_id"].get<Id>()) << what;
  expect_optional(e.run_id, x["run_id"], what);
  EXPECT_EQ(e.dataset, x["dataset"]) << what;
  EXPECT_EQ(e.seqlen, x["seqlen"].get<int>()) << what;
  EXPECT_EQ(e.windows, x["windows"].get<int>()) << what;
  expect_real(e.perplexity, x["perplexity"], what + " perplexity");
  expect_real(e.nll, x["nll"], what + " nll");
  EXPECT_EQ(e.tokens, x["tokens"].get<std::int64_t>()) << what;
  expect_real(e.seconds, x["seconds"], what + " seconds");
  EXPECT_EQ(ms(e.created), x["created_ms"].get<std::int64_t>()) << what;
}

void expect_point(const ComparePoint& p, const json& x, const std::string& what) {
  EXPECT_EQ(p.evaluation_id, x["evaluation_id"].get<Id>()) << what;
  expect_optional(p.run_id, x["run_id"], what);
  if (x["method"].is_null()) {
    EXPECT_FALSE(p.method.has_value()) << what;
  } else {
    ASSERT_TRUE(p.method.has_value()) << what;
    EXPECT_EQ(name(*p.method), x["method"].get<std::string>()) << what;
  }
  EXPECT_EQ(p.config, x["config"]) << what;
  expect_optional(p.bits, x["bits"], what + " bits");
  expect_real(p.perplexity, x["perplexity"], what + " perplexity");
}

TEST_F(ReferenceDatabase, OpensAtVersionOneWithoutChangingRows) {
  auto db = RunDatabase::open(file_);
  EXPECT_EQ(db.schema_version(), 1);
  db.check_integrity();
  EXPECT_EQ(store_test::raw_text(file_, "PRAGMA journal_mode"), "wal");  // switched on first open
}

TEST_F(ReferenceDatabase, ModelsWithRunCounts) {
  auto db = RunDatabase::open(file_);
  const auto models = db.list_models();
  const json& x = expected_["models"];
  ASSERT_EQ(models.size(), x.size());
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelSummary& m = models[i];
    EXPECT_EQ(m.id, x[i]["id"].get<Id>());
    EXPECT_EQ(m.name, x[i]["name"]);
    EXPECT_EQ(m.path.string(), x[i]["path"]);
    EXPECT_EQ(m.format, x[i]["format"]);
    EXPECT_EQ(m.architecture, x[i]["architecture"]);
    EXPECT_EQ(m.parameters, x[i]["parameters"].get<std::int64_t>());
    EXPECT_EQ(m.dtype, x[i]["dtype"]);
    EXPECT_EQ(m.size_bytes, x[i]["size_bytes"].get<std::int64_t>());
    EXPECT_EQ(ms(m.added), x[i]["added_ms"].get<std::int64_t>());
    EXPECT_EQ(m.run_count, x[i]["run_count"].get<std::int64_t>()) << m.name;
    EXPECT_EQ(m.finished_run_count, x[i]["finished_run_count"].get<std::int64_t>()) << m.name;
  }
}

TEST_F(ReferenceDatabase, RunsOfModelWithFinalMetrics) {
  auto db = RunDatabase::open(file_);
  for (const auto& [model_id, x] : expected_["runs_of_model"].items()) {
    const auto runs = db.runs_of_model(std::stoll(model_id));
    ASSERT_EQ(runs.size(), x.size()) << "model " << model_id;
    for (size_t i = 0; i < runs.size(); ++i) {
      const RunSummary& r = runs[i];
      const json& e = x[i];
      const std::string what = "run " + std::to_string(r.id);
      EXPECT_EQ(r.id, e["id"].get<Id>());
      EXPECT_EQ(r.model_id, e["model_id"].get<Id>()) << what;
      EXPECT_EQ(name(r.method), e["method"].get<std::string>()) << what;
      EXPECT_EQ(r.config, e["config"]) << what;
      EXPECT_EQ(r.settings, e["settings"]) << what;
      EXPECT_EQ(name(r.status), e["status"].get<std::string>()) << what;
      EXPECT_EQ(r.error_message, e["error_message"]) << what;
      EXPECT_EQ(ms(r.created), e["created_ms"].get<std::int64_t>()) << what;
      expect_optional(r.started ? std::optional(ms(*r.started)) : std::nullopt, e["started_ms"], what);
      expect_optional(r.finished ? std::optional(ms(*r.finished)) : std::nullopt, e["finished_ms"], what);
      EXPECT_EQ(r.output_dir.string(), e["output_dir"]) << what;
      EXPECT_EQ(r.checkpoint_dir.string(), e["checkpoint_dir"]) << what;
      expect_optional(r.bits_predicted, e["bits_predicted"], what);
      expect_optional(r.bits_measured, e["bits_measured"], what);
      expect_optional(r.output_bytes, e["output_bytes"], what);
      EXPECT_EQ(r.layers_done, e["layers_done"].get<std::int64_t>()) << what;
      if (e["mean_relative_error"].is_null()) {
        EXPECT_FALSE(r.mean_relative_error.has_value()) << what;
      } else {
        ASSERT_TRUE(r.mean_relative_error.has_value()) << what;
        const double want = e["mean_relative_error"];
        EXPECT_NEAR(*r.mean_relative_error, want, kAggregateTolerance * want) << what;
      }
      const double seconds = e["layer_seconds"];
      EXPECT_NEAR(r.layer_seconds, seconds, kAggregateTolerance * std::max(1.0, seconds)) << what;
      ASSERT_EQ(r.latest_evaluations.size(), e["latest_evaluations"].size()) << what;
      for (size_t k = 0; k < r.latest_evaluations.size(); ++k) {
        expect_evaluation(r.latest_evaluations[k], e["latest_evaluations"][k]);
      }
    }
  }
}

TEST_F(ReferenceDatabase, LayerTablesInBlockThenRecordingOrder) {
  auto db = RunDatabase::open(file_);
  for (const auto& [run_id, x] : expected_["layer_tables"].items()) {
    const auto table = db.layer_table(std::stoll(run_id));
    ASSERT_EQ(table.size(), x.size()) << "run " << run_id;
    for (size_t i = 0; i < table.size(); ++i) {
      const std::string what = "run " + run_id + " row " + std::to_string(i);
      EXPECT_EQ(table[i].block, x[i]["block"].get<int>()) << what;
      EXPECT_EQ(table[i].layer, x[i]["layer"]) << what;
      EXPECT_EQ(table[i].config, x[i]["config"]) << what;
      expect_real(table[i].loss, x[i]["loss"], what + " loss");
      expect_real(table[i].relative_error, x[i]["relative_error"], what + " relative error");
      expect_real(table[i].seconds, x[i]["seconds"], what + " seconds");
      expect_real(table[i].bits, x[i]["bits"], what + " bits");
    }
  }
}

void expect_step_losses(const std::vector<StepLoss>& losses, const json& x, const std::string& what) {
  ASSERT_EQ(losses.size(), x.size()) << what;
  for (size_t i = 0; i < losses.size(); ++i) {
    const std::string row = what + " row " + std::to_string(i);
    EXPECT_EQ(losses[i].block, x[i]["block"].get<int>()) << row;
    EXPECT_EQ(losses[i].layer, x[i]["layer"]) << row;
    EXPECT_EQ(losses[i].step, x[i]["step"].get<std::int64_t>()) << row;
    EXPECT_EQ(losses[i].phase, x[i]["phase"]) << row;
    expect_real(losses[i].loss, x[i]["loss"], row);
  }
}

TEST_F(ReferenceDatabase, StepLossesOfRunAndOfOneLayer) {
  auto db = RunDatabase::open(file_);
  for (const auto& [run_id, x] : expected_["step_losses"].items()) {
    expect_step_losses(db.step_losses(std::stoll(run_id)), x, "run " + run_id);
  }
  for (const json& x : expected_["step_losses_of_layer"]) {
    const LayerRef layer{x["block"].get<int>(), x["layer"].get<std::string>()};
    expect_step_losses(db.step_losses(x["run_id"].get<Id>(), layer), x["losses"],
                       "run " + x["run_id"].dump() + " layer " + x["layer"].dump());
  }
}

TEST_F(ReferenceDatabase, EvaluationsAndComparePlot) {
  auto db = RunDatabase::open(file_);
  for (const auto& [model_id, x] : expected_["evaluations_of_model"].items()) {
    const auto evaluations = db.evaluations_of_model(std::stoll(model_id));
    ASSERT_EQ(evaluations.size(), x.size());
    for (size_t i = 0; i < evaluations.size(); ++i) expect_evaluation(evaluations[i], x[i]);
  }
  for (const json& x : expected_["compare_points"]) {
    const auto points = db.compare_points(x["model_id"], x["dataset"].get<std::string>(), x["seqlen"]);
    const std::string what = "compare " + x["model_id"].dump() + " " + x["dataset"].get<std::string>() + " " +
                             x["seqlen"].dump();
    ASSERT_EQ(points.size(), x["points"].size()) << what;
    for (size_t i = 0; i < points.size(); ++i) expect_point(points[i], x["points"][i], what + " #" + std::to_string(i));
  }
}

TEST_F(ReferenceDatabase, BestPerplexityNearBudget) {
  auto db = RunDatabase::open(file_);
  for (const json& x : expected_["best_near_budget"]) {
    const std::string what = "budget " + x["target"].dump() + " ± " + x["tolerance"].dump();
    const auto best = db.best_near_budget(x["model_id"], x["dataset"].get<std::string>(), x["seqlen"],
                                          x["target"], x["tolerance"]);
    if (x["best"].is_null()) {
      EXPECT_FALSE(best.has_value()) << what;
    } else {
      ASSERT_TRUE(best.has_value()) << what;
      expect_point(*best, x["best"], what);
    }
  }
}

TEST_F(ReferenceDatabase, Artifacts) {
  auto db = RunDatabase::open(file_);
  for (const auto& [run_id, x] : expected_["artifacts"].items()) {
    const auto artifacts = db.artifacts_of_run(std::stoll(run_id));
    ASSERT_EQ(artifacts.size(), x.size());
    for (size_t i = 0; i < artifacts.size(); ++i) {
      EXPECT_EQ(artifacts[i].id, x[i]["id"].get<Id>());
      EXPECT_EQ(artifacts[i].run_id, x[i]["run_id"].get<Id>());
      EXPECT_EQ(artifacts[i].kind, x[i]["kind"]);
      EXPECT_EQ(artifacts[i].path.string(), x[i]["path"]);
      EXPECT_EQ(artifacts[i].bytes, x[i]["bytes"].get<std::int64_t>());
      EXPECT_EQ(artifacts[i].sha256, x[i]["sha256"]);
      EXPECT_EQ(ms(artifacts[i].created), x[i]["created_ms"].get<std::int64_t>());
    }
  }
}

TEST_F(ReferenceDatabase, ConversationsWithMessages) {
  auto db = RunDatabase::open(file_);
  const auto conversations = db.list_conversations();
  const json& x = expected_["conversations"];
  ASSERT_EQ(conversations.size(), x.size());
  for (size_t i = 0; i < conversations.size(); ++i) {
    const ConversationSummary& c = conversations[i];
    const std::string what = "conversation " + std::to_string(c.id);
    EXPECT_EQ(c.id, x[i]["id"].get<Id>());
    EXPECT_EQ(c.title, x[i]["title"]) << what;
    expect_optional(c.model_id, x[i]["model_id"], what);
    expect_optional(c.run_id, x[i]["run_id"], what);
    EXPECT_EQ(c.system_prompt, x[i]["system_prompt"]) << what;
    EXPECT_EQ(c.sampling, x[i]["sampling"]) << what;
    EXPECT_EQ(ms(c.created), x[i]["created_ms"].get<std::int64_t>()) << what;
    EXPECT_EQ(c.message_count, x[i]["message_count"].get<std::int64_t>()) << what;
    EXPECT_EQ(ms(c.last_activity), x[i]["last_activity_ms"].get<std::int64_t>()) << what;

    const auto full = db.conversation(c.id);
    ASSERT_TRUE(full.has_value()) << what;
    EXPECT_EQ(full->conversation.title, c.title);
    const json& messages = x[i]["messages"];
    ASSERT_EQ(full->messages.size(), messages.size()) << what;
    for (size_t k = 0; k < messages.size(); ++k) {
      const Message& m = full->messages[k];
      EXPECT_EQ(m.id, messages[k]["id"].get<Id>()) << what;
      EXPECT_EQ(m.conversation_id, c.id);
      EXPECT_EQ(name(m.role), messages[k]["role"].get<std::string>()) << what;
      EXPECT_EQ(m.content, messages[k]["content"]) << what;  // UTF-8 (accents, emoji) intact
      EXPECT_EQ(m.tokens, messages[k]["tokens"].get<std::int64_t>()) << what;
      expect_optional(m.tokens_per_second, messages[k]["tokens_per_second"], what);
      expect_optional(m.time_to_first_token_s, messages[k]["time_to_first_token_s"], what);
      EXPECT_EQ(ms(m.created), messages[k]["created_ms"].get<std::int64_t>()) << what;
    }
  }
  EXPECT_FALSE(db.conversation(999).has_value());
}

}  // namespace
}  // namespace aqlm::store
