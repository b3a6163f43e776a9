#include "core/jobs/progress_event.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <utility>

#include "core/common/error.h"

namespace aqlm {

namespace {

using json = nlohmann::json;

constexpr std::array<std::pair<EventKind, const char*>, 15> kKindNames = {{
    {EventKind::RunStarted, "run_started"},
    {EventKind::Calibration, "calibration"},
    {EventKind::Bits, "bits"},
    {EventKind::BlockStarted, "block_started"},
    {EventKind::LayerStep, "layer_step"},
    {EventKind::LayerFinished, "layer_finished"},
    {EventKind::FinetuneStep, "finetune_step"},
    {EventKind::BlockFinished, "block_finished"},
    {EventKind::CheckpointSaved, "checkpoint_saved"},
    {EventKind::Evaluation, "evaluation"},
    {EventKind::OutputWritten, "output_written"},
    {EventKind::RunFinished, "run_finished"},
    {EventKind::RunFailed, "run_failed"},
    {EventKind::RunCancelled, "run_cancelled"},
    {EventKind::Message, "message"},
}};

// JSON has no NaN or infinity: such a loss is written as null and read back as NaN, so a
// diverging step still shows up in the log.
json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double read_number(const json& j, const char* key) {
  const json& v = j.at(key);
  if (v.is_null()) return std::nan("");
  AQLM_CHECK(v.is_number(), "progress event: field '", key, "' is ", v.type_name(), ", not a number");
  return v.get<double>();
}

template <typename T>
T read_integer(const json& j, const char* key) {
  const json& v = j.at(key);
  AQLM_CHECK(v.is_number_integer(), "progress event: field '", key, "' is ", v.dump(), ", not an integer");
  return v.get<T>();
}

std::string read_string(const json& j, const char* key) {
  const json& v = j.at(key);
  AQLM_CHECK(v.is_string(), "progress event: field '", key, "' is ", v.type_name(), ", not a string");
  return v.get<std::string>();
}

}  // namespace

const char* event_kind_name(EventKind kind) {
  for (const auto& [k, name] : kKindNames)
    if (k == kind) return name;
  return "?";
}

EventKind parse_event_kind(const std::string& name) {
  for (const auto& [k, n] : kKindNames)
    if (name == n) return k;
  fail("progress event: unknown event '", name, "'");
}

json to_json(const ProgressEvent& e) {
  json j = json::object();
  j["event"] = event_kind_name(e.kind);
  j["t"] = number_or_null(e.elapsed_s);
  if (e.block >= 0) j["block"] = e.block;
  if (e.blocks > 0) j["blocks"] = e.blocks;
  if (!e.layer.empty()) j["layer"] = e.layer;
  if (!e.phase.empty()) j["phase"] = e.phase;
  if (e.epoch >= 0) j["epoch"] = e.epoch;
  if (e.step >= 0) j["step"] = e.step;
  if (e.steps >= 0) j["steps"] = e.steps;
  if (e.loss) j["loss"] = number_or_null(*e.loss);
  if (e.heldout_loss) j["heldout_loss"] = number_or_null(*e.heldout_loss);
  if (e.eta_s) j["eta_s"] = number_or_null(*e.eta_s);
  if (!e.message.empty()) j["message"] = e.message;
  if (!e.data.empty()) j["data"] = e.data;
  return j;
}

ProgressEvent progress_event_from_json(const json& j) {
  AQLM_CHECK(j.is_object(), "progress event: expected a JSON object, got ", j.type_name());
  AQLM_CHECK(j.contains("event"), "progress event: the field 'event' is missing");
  ProgressEvent e;
  e.kind = parse_event_kind(read_string(j, "event"));
  if (j.contains("t")) e.elapsed_s = read_number(j, "t");
  if (j.contains("block")) e.block = read_integer<int>(j, "block");
  if (j.contains("blocks")) e.blocks = read_integer<int>(j, "blocks");
  if (j.contains("layer")) e.layer = read_string(j, "layer");
  if (j.contains("phase")) e.phase = read_string(j, "phase");
  if (j.contains("epoch")) e.epoch = read_integer<int>(j, "epoch");
  if (j.contains("step")) e.step = read_integer<int64_t>(j, "step");
  if (j.contains("steps")) e.steps = read_integer<int64_t>(j, "steps");
  if (j.contains("loss")) e.loss = read_number(j, "loss");
  if (j.contains("heldout_loss")) e.heldout_loss = read_number(j, "heldout_loss");
  if (j.contains("eta_s")) e.eta_s = read_number(j, "eta_s");
  if (j.contains("message")) e.message = read_string(j, "message");
  if (j.contains("data")) {
    AQLM_CHECK(j["data"].is_object(), "progress event: field 'data' is ", j["data"].type_name(), ", not an object");
    e.data = j["data"];
  }
  return e;
}

std::string to_json_line(const ProgressEvent& event) { return to_json(event).dump(); }

JsonLinesSink::JsonLinesSink(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) fail(path, ": cannot write the progress log: ", std::strerror(errno));
}

JsonLinesSink::~JsonLinesSink() {
  if (file_) std::fclose(file_);
}

void JsonLinesSink::emit(const ProgressEvent& event) {
  const std::string line = to_json_line(event) + "\n";
  std::lock_guard lock(mutex_);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    fail(path_, ": cannot write the progress log: ", std::strerror(errno));
}

std::vector<ProgressEvent> ProgressLogReader::read_new() {
  std::vector<ProgressEvent> events;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return events;  // not created yet
  in.seekg(0, std::ios::end);
  const auto end = uint64_t(in.tellg());
  if (end <= offset_) return events;
  std::string chunk(size_t(end - offset_), '\0');
  in.seekg(std::streamoff(offset_));
  in.read(chunk.data(), std::streamsize(chunk.size()));
  AQLM_CHECK(uint64_t(in.gcount()) == chunk.size(), path_, ": the progress log could not be read");
  size_t begin = 0;
  for (size_t nl = chunk.find('\n'); nl != std::string::npos; nl = chunk.find('\n', begin)) {
    ++line_;
    const std::string_view line(chunk.data() + begin, nl - begin);
    begin = nl + 1;
    if (line.empty()) continue;
    try {
      events.push_back(progress_event_from_json(json::parse(line)));
    } catch (const json::exception& e) {
      fail(path_, ": line ", line_, " is not JSON (", e.what(), ")");
    } catch (const Error& e) {
      fail(path_, ": line ", line_, ": ", e.what());
    }
  }
  offset_ += begin;  // an unfinished last line is read again next time
  return events;
}

}  // namespace aqlm
