#pragma once
// What a running job tells the world: one ProgressEvent per step, layer, block and
// milestone. The same value reaches an in-process listener (the studio calling a Job
// directly) and, serialized as one JSON object per line, a reader of `aqlm-cli quantize
// --log-json FILE` (the studio running the CLI as a child process): to_json and
// progress_event_from_json are exact inverses, so both paths see the same fields.
//
// A line looks like
//   {"event":"layer_step","t":12.5,"block":3,"blocks":30,"layer":"mlp.up_proj","phase":"adam",
//    "epoch":1,"step":40,"steps":100,"loss":0.0123,"eta_s":3605.2}
// Fields that do not apply to an event are left out.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aqlm {

enum class EventKind {
  RunStarted,       // data: the settings
  Calibration,      // data: windows, tokens, files
  Bits,             // data: predicted bits per parameter, parameters, predicted bytes
  BlockStarted,
  LayerStep,        // one quantizer step of `layer`: phase init|adam|beam|gptq|rtn, loss = relative error
  LayerFinished,    // loss = the layer's relative output error; data: bits, seconds
  FinetuneStep,     // one Adam step of block fine-tuning: loss = train relative MSE, heldout_loss when evaluated
  BlockFinished,    // loss = relative MSE of the quantized block's outputs on the train windows; heldout_loss
  CheckpointSaved,  // data: what the checkpoint now holds
  Evaluation,       // data: dataset, seqlen, perplexity, nll, tokens
  OutputWritten,    // data: path, bytes, measured bits
  RunFinished,
  RunFailed,        // message: the one-line error
  RunCancelled,     // message: how to resume
  Message,          // message: information for the user
};

const char* event_kind_name(EventKind kind);  // "layer_step", ...
// Error naming the text when it is no kind.
EventKind parse_event_kind(const std::string& name);

struct ProgressEvent {
  EventKind kind = EventKind::Message;
  double elapsed_s = 0;  // since this process started the run ("t")
  int block = -1;        // 0-based; -1 when the event is not about a block
  int blocks = 0;
  std::string layer;     // "self_attn.q_proj"
  std::string phase;
  int epoch = -1;
  int64_t step = -1, steps = -1;
  std::optional<double> loss, heldout_loss;
  std::optional<double> eta_s;
  std::string message;
  nlohmann::json data = nlohmann::json::object();

  bool operator==(const ProgressEvent&) const = default;
};

nlohmann::json to_json(const ProgressEvent& event);
// Error naming the field when the object is not an event (what a reader of a log gets for a
// damaged line).
ProgressEvent progress_event_from_json(const nlohmann::json& j);
// One line of the log, without the newline.
std::string to_json_line(const ProgressEvent& event);

// Where events go. emit() is called from the job's thread; implementations that share state
// with other threads lock it themselves.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void emit(const ProgressEvent& event) = 0;
};

// Appends one JSON line per event to a file (created or truncated) and flushes it, so a reader
// tailing the file sees each event as soon as it happens. Errors name the file.
class JsonLinesSink : public ProgressSink {
 public:
  explicit JsonLinesSink(const std::string& path);
  ~JsonLinesSink() override;
  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;
  void emit(const ProgressEvent& event) override;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

class CallbackSink : public ProgressSink {
 public:
  explicit CallbackSink(std::function<void(const ProgressEvent&)> fn) : fn_(std::move(fn)) {}
  void emit(const ProgressEvent& event) override { fn_(event); }

 private:
  std::function<void(const ProgressEvent&)> fn_;
};

// Sends every event to each of its sinks, in the order they were added.
class FanOutSink : public ProgressSink {
 public:
  void add(std::shared_ptr<ProgressSink> sink) { sinks_.push_back(std::move(sink)); }
  void emit(const ProgressEvent& event) override {
    for (auto& s : sinks_) s->emit(event);
  }

 private:
  std::vector<std::shared_ptr<ProgressSink>> sinks_;
};

// Reads a JSON-lines log as it grows (the studio's side of --log-json): each read_new()
// returns the events of the lines completed since the last call. A last line without its
// newline is an event still being written and waits for the next call; any other line that
// does not parse is an Error naming the file and the line number. A file that does not exist
// yet reads as empty.
class ProgressLogReader {
 public:
  explicit ProgressLogReader(std::string path) : path_(std::move(path)) {}
  std::vector<ProgressEvent> read_new();

 private:
  std::string path_;
  uint64_t offset_ = 0;
  int64_t line_ = 0;
};

}  // namespace aqlm
