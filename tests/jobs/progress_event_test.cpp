// ProgressEvent as the studio sees it either way: in process, or as JSON lines read back from
// `aqlm-cli quantize --log-json` while the file grows.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/common/error.h"
#include "core/jobs/job.h"
#include "core/jobs/cancelled.h"
#include "core/jobs/progress_event.h"
#include "tests/support/test_paths.h"

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

ProgressEvent full_event() {
  ProgressEvent e;
  e.kind = EventKind::LayerStep;
  e.elapsed_s = 12.5;
  e.block = 3;
  e.blocks = 30;
  e.layer = "mlp.up_proj";
  e.phase = "adam";
  e.epoch = 1;
  e.step = 40;
  e.steps = 100;
  e.loss = 0.0123;
  e.heldout_loss = 0.02;
  e.eta_s = 3605.25;
  e.message = "hello \"quoted\"\n";
  e.data = {{"bits", 2.25}, {"list", {1, 2}}};
  return e;
}

TEST(ProgressEvent, JsonLineAndBackGiveTheSameEvent) {
  const ProgressEvent e = full_event();
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one event, one line";
  EXPECT_EQ(progress_event_from_json(nlohmann::json::parse(line)), e);
  EXPECT_EQ(line.rfind("{\"block\":3,\"blocks\":30,\"data\":", 0), 0u) << line;

  // Every kind by name, and fields that do not apply stay out of the line.
  for (int k = 0; k <= int(EventKind::Message); ++k) {
    ProgressEvent m;
    m.kind = EventKind(k);
    const nlohmann::json j = to_json(m);
    EXPECT_EQ(j.size(), 2u) << j.dump();  // "event" and "t"
    EXPECT_EQ(progress_event_from_json(j), m);
    EXPECT_EQ(parse_event_kind(event_kind_name(m.kind)), m.kind);
  }
}

TEST(ProgressEvent, NonFiniteLossesTravelAsNull) {
  ProgressEvent e;
  e.kind = EventKind::FinetuneStep;
  e.loss = std::nan("");
  e.heldout_loss = INFINITY;
  const nlohmann::json j = to_json(e);
  EXPECT_TRUE(j.at("loss").is_null());
  EXPECT_TRUE(j.at("heldout_loss").is_null());
  const ProgressEvent back = progress_event_from_json(j);
  ASSERT_TRUE(back.loss && back.heldout_loss);
  EXPECT_TRUE(std::isnan(*back.loss));
  EXPECT_TRUE(std::isnan(*back.heldout_loss));  // a diverged step is still visibly not a number
}

TEST(ProgressEvent, MalformedEventsAreNamed) {
  using nlohmann::json;
  EXPECT_EQ(error_of([] { progress_event_from_json(json::array()); }), "progress event: expected a JSON object, got array");
  EXPECT_EQ(error_of([] { progress_event_from_json(json{{"t", 1}}); }), "progress event: the field 'event' is missing");
  EXPECT_EQ(error_of([] { progress_event_from_json(json{{"event", "explode"}}); }),
            "progress event: unknown event 'explode'");
  EXPECT_EQ(error_of([] { progress_event_from_json(json{{"event", "layer_step"}, {"block", 1.5}}); }),
            "progress event: field 'block' is 1.5, not an integer");
  EXPECT_EQ(error_of([] { progress_event_from_json(json{{"event", "layer_step"}, {"layer", 3}}); }),
            "progress event: field 'layer' is number, not a string");
  EXPECT_EQ(error_of([] { progress_event_from_json(json{{"event", "bits"}, {"data", 3}}); }),
            "progress event: field 'data' is number, not an object");
}

TEST(ProgressLog, WriterAndIncrementalReader) {
  const fs::path dir = test::temp_dir("progress-log");
  const std::string path = (dir / "log.jsonl").string();
  ProgressLogReader reader(path);
  EXPECT_TRUE(reader.read_new().empty()) << "a log not created yet reads as empty";
  {
    JsonLinesSink sink(path);
    ProgressEvent a;
    a.kind = EventKind::RunStarted;
    sink.emit(a);
    const std::vector<ProgressEvent> first = reader.read_new();  // flushed per event: visible at once
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].kind, EventKind::RunStarted);
    sink.emit(full_event());
  }
  // A writer caught in the middle of a line: the partial line waits for its end.
  std::ofstream(path, std::ios::app) << "{\"event\":\"block_sta";
  std::vector<ProgressEvent> next = reader.read_new();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0], full_event());
  std::ofstream(path, std::ios::app) << "rted\",\"block\":4}\n";
  next = reader.read_new();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].kind, EventKind::BlockStarted);
  EXPECT_EQ(next[0].block, 4);
  EXPECT_TRUE(reader.read_new().empty());
  std::ofstream(path, std::ios::app) << "\nnot json\n";
  EXPECT_NE(error_of([&] { reader.read_new(); }).find(path + ": line 5 is not JSON"), std::string::npos);
  EXPECT_EQ(error_of([&] { JsonLinesSink bad((dir / "no" / "dir" / "x.jsonl").string()); }),
            (dir / "no" / "dir" / "x.jsonl").string() + ": cannot write the progress log: No such file or directory");
  fs::remove_all(dir);
}

TEST(Job, FailureAndCancellationReachTheSinks) {
  PipelineSettings s;
  s.model = "/nonexistent/model.gguf";
  s.out_dir = (test::temp_dir("job") / "out").string();
  std::vector<ProgressEvent> seen;
  Job failing(s);
  failing.add_sink(std::make_shared<CallbackSink>([&](const ProgressEvent& e) { seen.push_back(e); }));
  EXPECT_THROW(failing.run(), Error);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, EventKind::RunFailed);
  EXPECT_EQ(seen[0].message, "/nonexistent/model.gguf: no such file or folder");
  EXPECT_EQ(seen[0].data.at("checkpoint"), s.out_dir + ".checkpoint");

  const auto model = test::shared_path("models/stories260K/stories260K.bin");
  if (!model) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
  s.model = model->string();
  s.method = PipelineMethod::Rtn;
  s.nsamples = 2;
  s.seqlen = 16;
  s.calibration_files = {test::source_path("tests/fixtures/quant/pipeline/stories260K_calibration.txt").string()};
  seen.clear();
  Job cancelled(s);
  cancelled.add_sink(std::make_shared<CallbackSink>([&](const ProgressEvent& e) {
    seen.push_back(e);
    if (e.kind == EventKind::LayerFinished) cancelled.cancel();  // as the studio's Stop button would
  }));
  EXPECT_THROW(cancelled.run(), Cancelled);
  EXPECT_TRUE(cancelled.cancel_requested());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().kind, EventKind::RunCancelled);
  EXPECT_EQ(seen.back().message,
            "stopped; the checkpoint in " + s.out_dir + ".checkpoint resumes it (--resume)");
  EXPECT_TRUE(fs::exists(fs::path(s.out_dir + ".checkpoint") / "checkpoint.json"));
  fs::remove_all(fs::path(s.out_dir).parent_path());
}

}  // namespace
}  // namespace aqlm
