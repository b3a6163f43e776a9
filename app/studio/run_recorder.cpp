#include "app/studio/run_recorder.h"

#include <QCryptographicHash>
#include <QFile>

#include <cmath>
#include <filesystem>

#include "core/common/error.h"

namespace aqlm::studio {

namespace {

double or_nan(const std::optional<double>& value) { return value.value_or(std::nan("")); }

// The artifact's checksum: of its weights file (model.safetensors, or the first shard), which
// is what tells two outputs apart; hashing in 1 MiB pieces keeps memory flat.
std::pair<std::filesystem::path, std::string> weights_checksum(const std::filesystem::path& folder) {
  std::filesystem::path weights = folder / "model.safetensors";
  if (!std::filesystem::exists(weights)) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(folder, error))
      if (entry.path().extension() == ".safetensors" && (weights.empty() || !std::filesystem::exists(weights) ||
                                                        entry.path().filename() < weights.filename()))
        weights = entry.path();
  }
  QFile file(QString::fromStdString(weights.string()));
  AQLM_CHECK(file.open(QIODevice::ReadOnly), weights.string(), ": cannot read the run's output to record its checksum: ",
             file.errorString().toStdString());
  QCryptographicHash hash(QCryptographicHash::Sha256);
  AQLM_CHECK(hash.addData(&file), weights.string(), ": reading the run's output failed: ", file.errorString().toStdString());
  return {weights, hash.result().toHex().toStdString()};
}

}  // namespace

RunRecorder::RunRecorder(store::RunDatabase& database, store::Id run_id, std::string config)
    : database_(database), run_id_(run_id), config_(std::move(config)) {}

std::string RunRecorder::dataset_name(const std::string& text_path) {
  return std::filesystem::path(text_path).stem().string();
}

void RunRecorder::record(const std::vector<ProgressEvent>& events) {
  std::vector<store::StepLoss> losses;
  for (const ProgressEvent& event : events) {
    // Step losses of a batch go in one transaction, before any row that follows them.
    const bool flush_first = event.kind != EventKind::LayerStep && event.kind != EventKind::FinetuneStep;
    if (flush_first && !losses.empty()) {
      database_.add_step_losses(run_id_, losses);
      losses.clear();
    }
    record_one(event, losses);
  }
  if (!losses.empty()) database_.add_step_losses(run_id_, losses);
}

void RunRecorder::record_one(const ProgressEvent& e, std::vector<store::StepLoss>& losses) {
  switch (e.kind) {
    case EventKind::LayerStep: {
      const auto key = std::make_pair(e.block, e.layer);
      losses.push_back({e.block, e.layer, next_step_[key]++, e.phase, or_nan(e.loss)});
      if (e.loss) last_loss_[key] = *e.loss;
      break;
    }
    case EventKind::FinetuneStep: {
      const auto key = std::make_pair(e.block, std::string());
      const std::int64_t step = next_step_[key]++;
      losses.push_back({e.block, "", step, "finetune", or_nan(e.loss)});
      if (e.heldout_loss) losses.push_back({e.block, "", step, "finetune_heldout", *e.heldout_loss});
      break;
    }
    case EventKind::LayerFinished: {
      const auto key = std::make_pair(e.block, e.layer);
      store::LayerMetric metric;
      metric.block = e.block;
      metric.layer = e.layer;
      metric.config = config_;
      const auto last = last_loss_.find(key);
      metric.loss = last != last_loss_.end() ? last->second : or_nan(e.loss);
      metric.relative_error = or_nan(e.loss);
      metric.seconds = e.data.value("seconds", 0.0);
      metric.bits = e.data.value("bits", 0.0);
      database_.record_layer_metric(run_id_, metric);
      next_step_.erase(key);
      break;
    }
    case EventKind::Evaluation: {
      store::EvalResult result;
      result.dataset = dataset_name(e.data.value("text", std::string("text")));
      result.seqlen = int(e.data.value("seqlen", 0));
      result.windows = int(e.data.value("windows", 0));
      result.perplexity = e.data.value("perplexity", std::nan(""));
      result.nll = e.data.value("nll", std::nan(""));
      result.tokens = e.data.value("tokens", std::int64_t(0));
      result.seconds = e.data.value("seconds", 0.0);
      database_.add_run_evaluation(run_id_, result);
      break;
    }
    case EventKind::OutputWritten: {
      const std::filesystem::path folder = e.data.value("path", std::string());
      measured_bits_ = e.data.value("bits_per_parameter", 0.0);
      output_bytes_ = e.data.value("bytes", std::int64_t(0));
      const auto [weights, sha256] = weights_checksum(folder);
      const std::optional<store::Run> run = database_.find_run(run_id_);
      const bool aqlm = run && run->method == store::QuantMethod::Aqlm;
      database_.add_artifact(run_id_, {aqlm ? "hf-aqlm" : "hf-fp16", std::filesystem::absolute(folder),
                                       *output_bytes_, sha256});
      output_recorded_ = true;
      break;
    }
    case EventKind::RunFinished: {
      const double bits = measured_bits_.value_or(e.data.value("bits_per_parameter", 0.0));
      const std::int64_t bytes = output_bytes_.value_or(e.data.value("bytes", std::int64_t(0)));
      database_.finish_run(run_id_, {bits, bytes});
      ending_ = e.kind;
      break;
    }
    case EventKind::RunFailed:
      failure_message_ = e.message;
      ending_ = e.kind;
      break;
    case EventKind::RunCancelled:
      ending_ = e.kind;
      break;
    default: break;
  }
}

}  // namespace aqlm::studio
