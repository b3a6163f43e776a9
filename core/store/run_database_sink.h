#pragma once
// A ProgressSink that records a quantization job in the run database, for the studio's run
// dashboard and compare view: per-layer metrics, every step's loss, the evaluation, the output
// folder as an artifact (with the SHA-256 of its weights), and the run's status (running,
// finished with its measured bits and bytes, failed with the error, paused when stopped with a
// resumable checkpoint). The only writer of these rows: aqlm-cli quantize --db uses it, and
// the studio runs its jobs through that option. Lives here, not in core/jobs, because the
// run database is its own library (a build without SQLite has the engine but not this).
//
// Like the RunDatabase it writes to, it must be used from one thread: the job's.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/jobs/progress_event.h"
#include "core/store/run_database.h"

namespace aqlm::store {

// The dataset an evaluation of `text_path` is stored under: the file's stem ("wikitext2-test"),
// so the fp model's own evaluation on the same file lines up with a run's.
std::string evaluation_dataset(const std::string& text_path);

class RunDatabaseSink : public ProgressSink {
 public:
  // `run_id` must exist (RunDatabase::create_run). `config` is what layer metrics record ("2x8g8").
  RunDatabaseSink(RunDatabase& database, Id run_id, std::string config);
  ~RunDatabaseSink() override;  // writes step losses still buffered (errors ignored there)

  void emit(const ProgressEvent& event) override;
  void flush();  // writes the buffered step losses now

 private:
  RunDatabase& db_;
  Id run_id_;
  std::string config_;
  std::vector<StepLoss> pending_;
  // Steps of one layer's quantizer, counted across its epochs and phases (the plot's x-axis);
  // a layer quantized again after a resume counts from 0 and overwrites its old steps.
  std::map<std::pair<int, std::string>, int64_t> layer_steps_;
  // The last step's loss of each layer in progress: the layer table's "loss" beside its final
  // relative error (which the quantizer measures again after rounding codebooks to fp16).
  std::map<std::pair<int, std::string>, double> last_loss_;
};

}  // namespace aqlm::store
