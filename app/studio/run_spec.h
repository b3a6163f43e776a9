#pragma once
// A run as the studio stores and starts it: the pipeline settings plus where it runs, kept in
// the run's settings JSON, and the aqlm-cli command line that executes it.
#include <QString>
#include <QStringList>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/quant/pipeline.h"
#include "core/store/records.h"

namespace aqlm::studio {

struct RunSpec {
  PipelineSettings pipeline;   // model, out_dir, method, calibration, fine-tuning, eval text
  QString device = "cpu";      // "cpu" or "cuda:N"
  int threads = 0;             // 0: all cores

  nlohmann::json to_json() const;  // {"pipeline": {...}, "device": "cpu", "threads": 0}
  static RunSpec from_json(const nlohmann::json& j);  // Error naming the missing field

  store::QuantMethod method() const;
  std::string config_name() const;  // "2x8g8", "w2g64"
};

// aqlm-cli arguments (after the program) for an attempt of run `run_id`: `log_json` receives the
// events, `database` the run's rows (--db ... --run-id); `resume` continues from the checkpoint.
QStringList quantize_arguments(const RunSpec& spec, const QString& log_json, const QString& database, store::Id run_id,
                               bool resume);

// The studio's folder for a run's logs: app data/runs/<id>.
std::filesystem::path run_log_dir(const std::filesystem::path& database_path, store::Id run_id);

// aqlm-cli beside the studio's executable, else $AQLM_CLI; empty when neither exists.
QString locate_cli();

}  // namespace aqlm::studio
