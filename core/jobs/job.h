#pragma once
// A quantization job: its settings, a cancel flag, its checkpoint folder and where its
// progress goes. The CLI (`aqlm-cli quantize`) and the studio run the same Job, so a run is
// the same thing wherever it starts: the studio either calls run() on a worker thread with a
// CallbackSink, or starts aqlm-cli as a child process and reads its --log-json file with
// ProgressLogReader; both see the same ProgressEvents.
#include <atomic>
#include <memory>

#include "core/jobs/progress_event.h"
#include "core/quant/pipeline.h"

namespace aqlm {

class Job {
 public:
  explicit Job(PipelineSettings settings);

  const PipelineSettings& settings() const { return settings_; }
  std::string checkpoint_dir() const { return settings_.resolved_checkpoint_dir(); }
  void add_sink(std::shared_ptr<ProgressSink> sink) { sinks_.add(std::move(sink)); }

  // Asks the run to stop at its next step boundary, leaving a resumable checkpoint. Safe from
  // any thread and from a signal handler (one lock-free atomic store).
  void cancel() { cancel_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancel_.load(std::memory_order_relaxed); }
  std::atomic<bool>* cancel_flag() { return &cancel_; }

  // Runs the pipeline to the end. On failure emits RunFailed (message: the error) and rethrows;
  // when cancelled emits RunCancelled and throws Cancelled.
  PipelineResult run();

 private:
  PipelineSettings settings_;
  FanOutSink sinks_;
  std::atomic<bool> cancel_{false};
  static_assert(std::atomic<bool>::is_always_lock_free, "cancel() must be usable from a signal handler");
};

}  // namespace aqlm
