#pragma once
// Turns the ProgressEvents of a quantization run (read from aqlm-cli's --log-json file) into
// rows of the run database: status, per-layer metrics, step losses, evaluations, the output
// artifact and the finished run's results. One recorder per attempt of a run (a resume starts
// a new one); it lives on the run worker's thread with that thread's RunDatabase.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/jobs/progress_event.h"
#include "core/store/run_database.h"

namespace aqlm::studio {

class RunRecorder {
 public:
  RunRecorder(store::RunDatabase& database, store::Id run_id, std::string config);

  // Records a batch (one transaction per kind of row where the store offers it).
  void record(const std::vector<ProgressEvent>& events);

  // What the log said about how the attempt ended (nullopt while it has not said).
  std::optional<EventKind> ending() const { return ending_; }
  const std::string& failure_message() const { return failure_message_; }
  bool output_recorded() const { return output_recorded_; }

  // The dataset name an evaluation of `text_path` is stored under: the file's stem
  // ("wikitext2-test"), so the fp model's own evaluation on the same file lines up with it.
  static std::string dataset_name(const std::string& text_path);

 private:
  void record_one(const ProgressEvent& event, std::vector<store::StepLoss>& losses);

  store::RunDatabase& database_;
  store::Id run_id_;
  std::string config_;
  // Steps of the current layer: the log numbers steps within an epoch and phase, the
  // database wants one increasing step per layer (the dashboard plots them in order).
  std::map<std::pair<int, std::string>, std::int64_t> next_step_;
  std::map<std::pair<int, std::string>, double> last_loss_;
  std::optional<double> measured_bits_;
  std::optional<std::int64_t> output_bytes_;
  std::optional<EventKind> ending_;
  std::string failure_message_;
  bool output_recorded_ = false;
};

}  // namespace aqlm::studio
