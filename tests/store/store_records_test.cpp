// Round trips through the typed API: every write comes back from the queries with the
// same values, and every bad call is an aqlm::Error with a one-line message.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "core/store/run_database.h"
#include "tests/store/store_test_util.h"
#include "tests/support/test_paths.h"

namespace aqlm::store {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "no aqlm::Error";
  return {};
}

class Store : public ::testing::Test {
 protected:
  void SetUp() override { file_ = aqlm::test::temp_dir("store-records") / "runs.sqlite"; }
  RunDatabase& db() {
    if (!db_) db_.emplace(RunDatabase::open(file_));
    return *db_;
  }
  std::string prefix() const { return file_.string() + ": "; }

  Id model(const std::string& path = "/models/smol.gguf") {
    return db().add_model(ModelInfo{"smol", path, "gguf", "llama", 134515008, "Q4_1", 94000000});
  }
  Id run(Id model_id, QuantMethod method = QuantMethod::Aqlm, const std::string& config = "2x8g8",
         std::optional<double> bits_predicted = 2.02) {
    RunRequest request;
    request.model_id = model_id;
    request.method = method;
    request.config = config;
    request.bits_predicted = bits_predicted;
    return db().create_run(request);
  }
  fs::path file_;
  std::optional<RunDatabase> db_;
};

// ---------------------------------------------------------------- models

TEST_F(Store, ModelRoundTripAndRefreshByPath) {
  const Timestamp before = now();
  const ModelInfo info{"SmolLM2", "/m/smol.gguf", "gguf", "llama", 134515008, "Q4_1", 94000000};
  const Id id = db().add_model(info);
  const Timestamp after = now();
  const auto found = db().find_model(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, id);
  EXPECT_EQ(found->name, "SmolLM2");
  EXPECT_EQ(found->path, "/m/smol.gguf");
  EXPECT_EQ(found->format, "gguf");
  EXPECT_EQ(found->architecture, "llama");
  EXPECT_EQ(found->parameters, 134515008);
  EXPECT_EQ(found->dtype, "Q4_1");
  EXPECT_EQ(found->size_bytes, 94000000);
  EXPECT_GE(found->added, before);
  EXPECT_LE(found->added, after);

  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  const Id again = db().add_model(ModelInfo{"SmolLM2 (Q8)", "/m/smol.gguf", "gguf", "llama", 134515008, "Q8_0", 145000000});
  EXPECT_EQ(again, id);
  const auto refreshed = db().find_model_by_path("/m/smol.gguf");
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(refreshed->name, "SmolLM2 (Q8)");
  EXPECT_EQ(refreshed->dtype, "Q8_0");
  EXPECT_EQ(refreshed->size_bytes, 145000000);
  EXPECT_EQ(refreshed->added, found->added);  // first seen, not last refreshed
  EXPECT_FALSE(db().find_model(id + 1));
  EXPECT_FALSE(db().find_model_by_path("/m/other.gguf"));
  EXPECT_EQ(db().list_models().size(), 1u);
}

TEST_F(Store, BadModelRowsAreRefusedByName) {
  EXPECT_EQ(error_of([&] { db().add_model(ModelInfo{"x", "/m/x", "gguf", "llama", -5, "F32", 1}); }),
            prefix() + "adding the model /m/x failed: CHECK constraint failed: parameters >= 0");
  EXPECT_EQ(error_of([&] { db().add_model(ModelInfo{"x", "", "gguf", "llama", 1, "F32", 1}); }),
            prefix() + "adding the model  failed: CHECK constraint failed: path <> ''");
  EXPECT_EQ(error_of([&] { db().remove_model(42); }), prefix() + "model 42 does not exist");
}

TEST_F(Store, ListModelsCountsRuns) {
  const Id a = model("/m/a");
  const Id b = model("/m/b");
  run(a);
  const Id finished = run(a, QuantMethod::Gptq, "w2g128");
  run(a, QuantMethod::Rtn, "w3g64");
  db().set_run_status(finished, RunStatus::Running);
  db().finish_run(finished, RunOutput{2.25, 40000000});
  const auto models = db().list_models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, a);
  EXPECT_EQ(models[0].run_count, 3);
  EXPECT_EQ(models[0].finished_run_count, 1);
  EXPECT_EQ(models[1].id, b);
  EXPECT_EQ(models[1].run_count, 0);
  EXPECT_EQ(models[1].finished_run_count, 0);
}

TEST_F(Store, RemovingAModelRemovesItsRunsButKeepsItsChatsUnlinked) {
  const Id m = model();
  const Id r = run(m);
  db().record_layer_metric(r, LayerMetric{0, "self_attn.q_proj", "2x8g8", 0.1, 0.05, 1.0, 2.0});
  const StepLoss loss{0, "self_attn.q_proj", 0, "adam", 0.3};
  db().add_step_losses(r, std::span(&loss, 1));
  db().add_run_evaluation(r, EvalResult{"wikitext2", 2048, 10, 20.0, std::log(20.0), 20480, 3.0});
  db().add_model_evaluation(m, EvalResult{"wikitext2", 2048, 10, 17.0, std::log(17.0), 20480, 3.0});
  db().add_artifact(r, ArtifactInfo{"hf-aqlm", "/out/1", 100, std::string(64, 'a')});
  ConversationInfo with_model{"about the model", m, std::nullopt, "", json::object()};
  ConversationInfo with_run{"about the run", std::nullopt, r, "", json::object()};
  const Id c1 = db().create_conversation(with_model);
  const Id c2 = db().create_conversation(with_run);
  db().add_message(c2, MessageInfo{MessageRole::User, "hi", 1, std::nullopt, std::nullopt});

  db().remove_model(m);
  for (const char* table : {"runs", "layer_metrics", "step_losses", "evaluations", "artifacts"}) {
    EXPECT_EQ(store_test::raw_integer(file_, str("SELECT count(*) FROM ", table)), 0) << table;
  }
  const auto chats = db().list_conversations();
  ASSERT_EQ(chats.size(), 2u);
  for (const auto& chat : chats) {
    EXPECT_FALSE(chat.model_id) << chat.title;
    EXPECT_FALSE(chat.run_id) << chat.title;
  }
  EXPECT_EQ(db().conversation(c2)->messages.size(), 1u);
  EXPECT_TRUE(db().conversation(c1));
}

// ---------------------------------------------------------------- runs

TEST_F(Store, RunRoundTripsEveryField) {
  const Id m = model();
  RunRequest request;
  request.model_id = m;
  request.method = QuantMethod::Gptq;
  request.config = "w2g128";
  request.settings = json{{"seed", 7}, {"calibration", {{"dataset", "wikitext2"}, {"samples", 128}}},
                          {"lr", 1e-4}, {"layers", json::array({"q", "k"})}};
  request.output_dir = "/out/ü run";
  request.checkpoint_dir = "/ckpt/r";
  request.bits_predicted = 2.25;
  const Timestamp before = now();
  const Id id = db().create_run(request);
  const auto r = db().find_run(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, id);
  EXPECT_EQ(r->model_id, m);
  EXPECT_EQ(r->method, QuantMethod::Gptq);
  EXPECT_EQ(r->config, "w2g128");
  EXPECT_EQ(r->settings, request.settings);
  EXPECT_EQ(r->output_dir, "/out/ü run");
  EXPECT_EQ(r->checkpoint_dir, "/ckpt/r");
  EXPECT_EQ(r->bits_predicted, 2.25);
  EXPECT_EQ(r->status, RunStatus::Queued);
  EXPECT_EQ(r->error_message, "");
  EXPECT_GE(r->created, before);
  EXPECT_FALSE(r->started);
  EXPECT_FALSE(r->finished);
  EXPECT_FALSE(r->bits_measured);
  EXPECT_FALSE(r->output_bytes);
  EXPECT_FALSE(db().find_run(id + 1));
}

TEST_F(Store, BadRunRequestsAreRefused) {
  const Id m = model();
  RunRequest request;
  request.model_id = m + 10;
  request.config = "2x8g8";
  EXPECT_EQ(error_of([&] { db().create_run(request); }), prefix() + "model " + std::to_string(m + 10) + " does not exist");
  request.model_id = m;
  request.settings = json::array({1, 2});
  EXPECT_EQ(error_of([&] { db().create_run(request); }),
            prefix() + "creating a aqlm 2x8g8 run failed: settings must be a JSON object");
  request.settings = json::object();
  request.config = "";
  EXPECT_EQ(error_of([&] { db().create_run(request); }),
            prefix() + "creating a aqlm  run failed: CHECK constraint failed: config <> ''");
  EXPECT_TRUE(db().runs_of_model(m).empty());
}

TEST_F(Store, RunLifecycleKeepsItsTimes) {
  const Id r = run(model());
  db().set_run_status(r, RunStatus::Running);
  const auto running = db().find_run(r);
  ASSERT_TRUE(running->started);
  EXPECT_FALSE(running->finished);
  std::this_thread::sleep_for(std::chrono::milliseconds(3));

  db().set_run_status(r, RunStatus::Paused);
  db().set_run_status(r, RunStatus::Running);
  EXPECT_EQ(db().find_run(r)->started, running->started);  // the first start stays

  db().set_run_status(r, RunStatus::Failed, "out of memory in block 3");
  const auto failed = db().find_run(r);
  EXPECT_EQ(failed->status, RunStatus::Failed);
  EXPECT_EQ(failed->error_message, "out of memory in block 3");
  ASSERT_TRUE(failed->finished);
  EXPECT_GT(*failed->finished, *running->started);
  EXPECT_EQ(db().runs_with_status(RunStatus::Failed).size(), 1u);

  db().set_run_status(r, RunStatus::Running);  // resumed from its checkpoint
  const auto resumed = db().find_run(r);
  EXPECT_EQ(resumed->error_message, "");
  EXPECT_FALSE(resumed->finished);

  db().finish_run(r, RunOutput{2.0302, 31457280});
  const auto done = db().find_run(r);
  EXPECT_EQ(done->status, RunStatus::Finished);
  EXPECT_EQ(done->bits_measured, 2.0302);
  EXPECT_EQ(done->output_bytes, 31457280);
  EXPECT_TRUE(done->finished);
  EXPECT_TRUE(db().runs_with_status(RunStatus::Running).empty());
  EXPECT_EQ(db().runs_with_status(RunStatus::Finished).at(0).id, r);
}

TEST_F(Store, ImpossibleRunMovesAreRefused) {
  const Id r = run(model());
  const std::string id = std::to_string(r);
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Paused); }),
            prefix() + "run " + id + " cannot go from queued to paused");
  EXPECT_EQ(error_of([&] { db().finish_run(r, RunOutput{2.0, 1}); }),
            prefix() + "run " + id + " cannot go from queued to finished");
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Finished); }),
            prefix() + "marking run " + id + " finished failed: use finish_run with its results");
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Failed); }),
            prefix() + "marking run " + id + " failed failed: a failed run needs its error message");
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Cancelled, "why"); }),
            prefix() + "marking run " + id + " cancelled failed: only a failed run has an error message");
  db().set_run_status(r, RunStatus::Running);
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Running); }),
            prefix() + "run " + id + " cannot go from running to running");
  EXPECT_EQ(error_of([&] { db().finish_run(r, RunOutput{std::nan(""), 1}); }),
            prefix() + "finishing run " + id + " failed: the measured bits per parameter must be a positive number, got nan");
  db().finish_run(r, RunOutput{2.0, 1});
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Running); }),
            prefix() + "run " + id + " cannot go from finished to running");
  EXPECT_EQ(error_of([&] { db().set_run_status(r, RunStatus::Cancelled); }),
            prefix() + "run " + id + " cannot go from finished to cancelled");
  EXPECT_EQ(error_of([&] { db().set_run_status(999, RunStatus::Running); }), prefix() + "run 999 does not exist");
  EXPECT_EQ(error_of([&] { db().remove_run(999); }), prefix() + "run 999 does not exist");
  db().remove_run(r);
  EXPECT_FALSE(db().find_run(r));
}

TEST_F(Store, NamesParseBackAndUnknownNamesAreListed) {
  for (auto m : {QuantMethod::Aqlm, QuantMethod::Gptq, QuantMethod::Rtn}) EXPECT_EQ(parse_quant_method(name(m)), m);
  for (auto s : {RunStatus::Queued, RunStatus::Running, RunStatus::Paused, RunStatus::Finished, RunStatus::Failed,
                 RunStatus::Cancelled}) {
    EXPECT_EQ(parse_run_status(name(s)), s);
  }
  for (auto r : {MessageRole::System, MessageRole::User, MessageRole::Assistant}) EXPECT_EQ(parse_message_role(name(r)), r);
  EXPECT_EQ(error_of([] { parse_quant_method("awq"); }),
            "unknown quantization method 'awq' (expected one of: aqlm, gptq, rtn)");
  EXPECT_EQ(error_of([] { parse_message_role("tool"); }),
            "unknown message role 'tool' (expected one of: system, user, assistant)");
}

// ---------------------------------------------------------------- metrics

TEST_F(Store, LayerTableKeepsRecordingOrderAndRedoneLayersReplaceTheirRow) {
  const Id m = model();
  const Id r = run(m);
  db().record_layer_metric(r, LayerMetric{1, "self_attn.q_proj", "2x8g8", 0.5, 0.25, 4.0, 2.0});
  db().record_layer_metric(r, LayerMetric{0, "self_attn.q_proj", "2x8g8", 0.125, 0.0625, 2.0, 2.0});
  db().record_layer_metric(r, LayerMetric{0, "self_attn.k_proj", "2x8g8", std::nan(""), 0.5, 1.0, 2.0});
  db().record_layer_metric(r, LayerMetric{0, "self_attn.q_proj", "1x16g8", 0.0625, 0.03125, 8.0, 2.5});  // redone
  const auto table = db().layer_table(r);
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table[0].block, 0);
  EXPECT_EQ(table[0].layer, "self_attn.q_proj");
  EXPECT_EQ(table[0].config, "1x16g8");
  EXPECT_EQ(table[0].loss, 0.0625);
  EXPECT_EQ(table[0].relative_error, 0.03125);
  EXPECT_EQ(table[0].seconds, 8.0);
  EXPECT_EQ(table[0].bits, 2.5);
  EXPECT_EQ(table[1].layer, "self_attn.k_proj");
  EXPECT_TRUE(std::isnan(table[1].loss));
  EXPECT_EQ(table[2].block, 1);

  const auto runs = db().runs_of_model(m);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].layers_done, 3);
  // (0.03125 + 0.5 + 0.25) / 3 and 8 + 1 + 4: exact in binary floating point.
  EXPECT_DOUBLE_EQ(*runs[0].mean_relative_error, (0.03125 + 0.5 + 0.25) / 3);
  EXPECT_EQ(runs[0].layer_seconds, 13.0);
  EXPECT_EQ(error_of([&] { db().record_layer_metric(r + 1, table[0]); }),
            prefix() + "run " + std::to_string(r + 1) + " does not exist");
}

TEST_F(Store, StepLossesRoundTripInPlotOrderAndResumedStepsOverwrite) {
  const Id r = run(model());
  std::vector<StepLoss> losses;
  for (int block : {1, 0}) {
    for (const char* layer : {"mlp.up_proj", "self_attn.q_proj", ""}) {
      for (int step = 9; step >= 0; --step) {
        losses.push_back(StepLoss{block, layer, step, *layer ? "adam" : "finetune", block + step / 16.0});
        if (step % 3 == 0 && *layer) losses.push_back(StepLoss{block, layer, step, "beam", -step / 8.0});
      }
    }
  }
  db().add_step_losses(r, losses);
  db().add_step_losses(r, {});  // nothing to do
  const auto all = db().step_losses(r);
  ASSERT_EQ(all.size(), losses.size());
  std::vector<StepLoss> expected = losses;
  std::sort(expected.begin(), expected.end(), [](const StepLoss& a, const StepLoss& b) {
    return std::tie(a.block, a.layer, a.step, a.phase) < std::tie(b.block, b.layer, b.step, b.phase);
  });
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].block, expected[i].block) << i;
    EXPECT_EQ(all[i].layer, expected[i].layer) << i;
    EXPECT_EQ(all[i].step, expected[i].step) << i;
    EXPECT_EQ(all[i].phase, expected[i].phase) << i;
    EXPECT_EQ(all[i].loss, expected[i].loss) << i;
  }
  const auto one = db().step_losses(r, LayerRef{1, "self_attn.q_proj"});
  ASSERT_EQ(one.size(), 14u);  // 10 adam + 4 beam
  for (const StepLoss& s : one) EXPECT_EQ(std::tie(s.block, s.layer), std::tie(one[0].block, "self_attn.q_proj"));
  EXPECT_EQ(db().step_losses(r, LayerRef{1, ""}).size(), 10u);
  EXPECT_TRUE(db().step_losses(r, LayerRef{2, "self_attn.q_proj"}).empty());

  const StepLoss redo[] = {{1, "self_attn.q_proj", 0, "adam", 42.0}, {1, "self_attn.q_proj", 10, "adam", std::nan("")}};
  db().add_step_losses(r, redo);
  const auto after = db().step_losses(r, LayerRef{1, "self_attn.q_proj"});
  ASSERT_EQ(after.size(), 15u);
  EXPECT_EQ(after.front().loss, 42.0);
  EXPECT_TRUE(std::isnan(after.back().loss));
}

TEST_F(Store, BadStepLossBatchLeavesNothingBehind) {
  const Id r = run(model());
  const StepLoss batch[] = {{0, "mlp.up_proj", 0, "adam", 1.0}, {0, "mlp.up_proj", -1, "adam", 1.0}};
  EXPECT_EQ(error_of([&] { db().add_step_losses(r, batch); }),
            prefix() + "adding 2 step losses to run " + std::to_string(r) + " failed: CHECK constraint failed: step >= 0");
  EXPECT_TRUE(db().step_losses(r).empty());
  EXPECT_EQ(error_of([&] { db().add_step_losses(r + 5, std::span(batch).first(1)); }),
            prefix() + "run " + std::to_string(r + 5) + " does not exist");
}

// ---------------------------------------------------------------- evaluations and artifacts

TEST_F(Store, EvaluationsOfModelAndRunsRoundTrip) {
  const Id m = model();
  const Id r = run(m);
  const EvalResult base{"wikitext2", 2048, 40, 17.25, std::log(17.25), 81920, 12.5};
  const EvalResult quantized{"wikitext2", 2048, 40, 25.5, std::log(25.5), 81920, 30.25};
  const Id e1 = db().add_model_evaluation(m, base);
  const Id e2 = db().add_run_evaluation(r, quantized);
  const auto all = db().evaluations_of_model(m);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, e1);
  EXPECT_FALSE(all[0].run_id);
  EXPECT_EQ(all[0].model_id, m);
  EXPECT_EQ(all[0].dataset, "wikitext2");
  EXPECT_EQ(all[0].seqlen, 2048);
  EXPECT_EQ(all[0].windows, 40);
  EXPECT_EQ(all[0].perplexity, 17.25);
  EXPECT_EQ(all[0].nll, std::log(17.25));
  EXPECT_EQ(all[0].tokens, 81920);
  EXPECT_EQ(all[0].seconds, 12.5);
  EXPECT_EQ(all[1].id, e2);
  EXPECT_EQ(all[1].run_id, r);
  EXPECT_EQ(all[1].model_id, m);  // filled in from the run

  const auto runs = db().runs_of_model(m);
  ASSERT_EQ(runs[0].latest_evaluations.size(), 1u);
  EXPECT_EQ(runs[0].latest_evaluations[0].id, e2);

  const auto points = db().compare_points(m, "wikitext2", 2048);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_FALSE(points[0].method);
  EXPECT_EQ(points[0].config, "Q4_1");
  EXPECT_EQ(points[1].method, QuantMethod::Aqlm);
  EXPECT_EQ(points[1].bits, 2.02);  // predicted until measured
  db().set_run_status(r, RunStatus::Running);
  db().finish_run(r, RunOutput{2.03, 1000});
  EXPECT_EQ(db().compare_points(m, "wikitext2", 2048)[1].bits, 2.03);
  EXPECT_TRUE(db().compare_points(m, "c4", 2048).empty());

  EXPECT_EQ(error_of([&] { db().add_run_evaluation(r + 1, quantized); }),
            prefix() + "run " + std::to_string(r + 1) + " does not exist");
  EXPECT_EQ(error_of([&] { db().add_model_evaluation(m, EvalResult{"wikitext2", 0, 1, 1.0, 0.0, 0, 0.0}); }),
            prefix() + "adding a wikitext2 evaluation of model " + std::to_string(m) +
                " failed: CHECK constraint failed: seqlen > 0");
  // The schema itself refuses an evaluation of a run filed under another model.
  const Id other = model("/m/other");
  EXPECT_THROW(store_test::raw_exec(file_, str("INSERT INTO evaluations (model_id, run_id, dataset, seqlen, windows, "
                                                "tokens, seconds, created_ms) VALUES (", other, ", ", r,
                                                ", 'wikitext2', 2048, 1, 1, 1, 0)")),
               std::runtime_error);
}

TEST_F(Store, ArtifactsRoundTripAndReplaceByPath) {
  const Id r = run(model());
  const std::string sha(64, 'e');
  const Id a = db().add_artifact(r, ArtifactInfo{"hf-aqlm", "/out/run", 123456789, sha});
  const Id b = db().add_artifact(r, ArtifactInfo{"log", "/out/run/log.jsonl", 42, std::string(64, '0')});
  const Id a2 = db().add_artifact(r, ArtifactInfo{"hf-aqlm", "/out/run", 987, std::string(64, 'f')});
  EXPECT_EQ(a2, a);
  const auto artifacts = db().artifacts_of_run(r);
  ASSERT_EQ(artifacts.size(), 2u);
  EXPECT_EQ(artifacts[0].id, a);
  EXPECT_EQ(artifacts[0].run_id, r);
  EXPECT_EQ(artifacts[0].kind, "hf-aqlm");
  EXPECT_EQ(artifacts[0].path, "/out/run");
  EXPECT_EQ(artifacts[0].bytes, 987);
  EXPECT_EQ(artifacts[0].sha256, std::string(64, 'f'));
  EXPECT_EQ(artifacts[1].id, b);
  const std::string bad = error_of([&] { db().add_artifact(r, ArtifactInfo{"log", "/x", 1, "ABC"}); });
  EXPECT_EQ(bad.rfind(prefix() + "recording the log artifact /x failed: CHECK constraint failed: length(sha256) = 64", 0),
            0u)
      << bad;
  EXPECT_EQ(error_of([&] { db().add_artifact(r + 1, ArtifactInfo{"log", "/x", 1, sha}); }),
            prefix() + "run " + std::to_string(r + 1) + " does not exist");
}

// ---------------------------------------------------------------- chat

TEST_F(Store, ConversationsAndMessagesRoundTrip) {
  const Id m = model();
  const Id r = run(m);
  const json sampling{{"temperature", 0.7}, {"top_p", 0.9}, {"seed", 1}};
  const Id first = db().create_conversation(ConversationInfo{"Hello", m, std::nullopt, "Be brief.", sampling});
  const Id second = db().create_conversation(ConversationInfo{"Run chat", std::nullopt, r, "", json::object()});
  std::this_thread::sleep_for(std::chrono::milliseconds(3));  // the first becomes the most recent
  const Id u = db().add_message(first, MessageInfo{MessageRole::User, "Qu'est-ce qu'AQLM ? 😀", 9, std::nullopt,
                                                   std::nullopt});
  const Id a = db().add_message(first, MessageInfo{MessageRole::Assistant, "Additive quantization.", 4, 38.5, 0.25});

  const auto list = db().list_conversations();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, first);
  EXPECT_EQ(list[0].message_count, 2);
  EXPECT_GT(list[0].last_activity, list[0].created);
  EXPECT_EQ(list[1].id, second);
  EXPECT_EQ(list[1].message_count, 0);
  EXPECT_EQ(list[1].last_activity, list[1].created);
  EXPECT_EQ(list[1].run_id, r);

  const auto full = db().conversation(first);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->conversation.title, "Hello");
  EXPECT_EQ(full->conversation.model_id, m);
  EXPECT_FALSE(full->conversation.run_id);
  EXPECT_EQ(full->conversation.system_prompt, "Be brief.");
  EXPECT_EQ(full->conversation.sampling, sampling);
  ASSERT_EQ(full->messages.size(), 2u);
  EXPECT_EQ(full->messages[0].id, u);
  EXPECT_EQ(full->messages[0].role, MessageRole::User);
  EXPECT_EQ(full->messages[0].content, "Qu'est-ce qu'AQLM ? 😀");
  EXPECT_EQ(full->messages[0].tokens, 9);
  EXPECT_FALSE(full->messages[0].tokens_per_second);
  EXPECT_EQ(full->messages[1].id, a);
  EXPECT_EQ(full->messages[1].conversation_id, first);
  EXPECT_EQ(full->messages[1].tokens_per_second, 38.5);
  EXPECT_EQ(full->messages[1].time_to_first_token_s, 0.25);

  db().rename_conversation(second, "Renamed");
  EXPECT_EQ(db().conversation(second)->conversation.title, "Renamed");
  db().remove_conversation(first);
  EXPECT_FALSE(db().conversation(first));
  EXPECT_EQ(store_test::raw_integer(file_, "SELECT count(*) FROM messages"), 0);
}

TEST_F(Store, BadConversationsAreRefused) {
  const Id m = model();
  const Id r = run(m);
  EXPECT_EQ(error_of([&] { db().create_conversation(ConversationInfo{"x", m, r, "", json::object()}); }),
            prefix() + "creating the conversation 'x' failed: a conversation is with a model or with a run's output, "
                       "not both");
  EXPECT_EQ(error_of([&] { db().create_conversation(ConversationInfo{"x", m, std::nullopt, "", json(3)}); }),
            prefix() + "creating the conversation 'x' failed: sampling settings must be a JSON object");
  EXPECT_EQ(error_of([&] { db().create_conversation(ConversationInfo{"x", m + 9, std::nullopt, "", json::object()}); }),
            prefix() + "model " + std::to_string(m + 9) + " does not exist");
  EXPECT_EQ(error_of([&] { db().add_message(77, MessageInfo{}); }), prefix() + "conversation 77 does not exist");
  EXPECT_EQ(error_of([&] { db().rename_conversation(77, "y"); }), prefix() + "conversation 77 does not exist");
  EXPECT_EQ(error_of([&] { db().remove_conversation(77); }), prefix() + "conversation 77 does not exist");
  EXPECT_TRUE(db().list_conversations().empty());
}

}  // namespace
}  // namespace aqlm::store
