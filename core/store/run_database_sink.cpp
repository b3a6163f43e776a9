#include "core/store/run_database_sink.h"

#include <cmath>
#include <filesystem>

#include "core/common/error.h"
#include "core/store/artifact_checksum.h"

namespace aqlm::store {

namespace {
constexpr size_t kBatch = 512;  // step losses per transaction

double loss_or_nan(const std::optional<double>& v) { return v ? *v : std::nan(""); }
}  // namespace

std::string evaluation_dataset(const std::string& text_path) { return std::filesystem::path(text_path).stem().string(); }

RunDatabaseSink::RunDatabaseSink(RunDatabase& database, Id run_id, std::string config)
    : db_(database), run_id_(run_id), config_(std::move(config)) {
  AQLM_CHECK(db_.find_run(run_id_), db_.file().string(), ": run ", run_id_, " does not exist");
}

RunDatabaseSink::~RunDatabaseSink() {
  try {
    flush();
  } catch (const Error&) {
    // Nothing to tell from a destructor; the run's own outcome was reported already.
  }
}

void RunDatabaseSink::flush() {
  if (pending_.empty()) return;
  db_.add_step_losses(run_id_, pending_);
  pending_.clear();
}

void RunDatabaseSink::emit(const ProgressEvent& e) {
  switch (e.kind) {
    case EventKind::RunStarted:
      if (db_.find_run(run_id_)->status != RunStatus::Running) db_.set_run_status(run_id_, RunStatus::Running);
      break;
    case EventKind::LayerStep: {
      int64_t& step = layer_steps_[{e.block, e.layer}];
      pending_.push_back(StepLoss{e.block, e.layer, step++, e.phase, loss_or_nan(e.loss)});
      if (e.loss) last_loss_[{e.block, e.layer}] = *e.loss;
      break;
    }
    case EventKind::FinetuneStep: {
      // Block fine-tuning (relative MSE of block e.block) or global fine-tuning (KL; the event
      // has block -1, recorded as block `blocks`, the place after the last block).
      const bool global = e.phase == "global";
      const std::string phase = global ? "global_finetune" : "finetune";
      const int block = global ? e.blocks : e.block;
      pending_.push_back(StepLoss{block, "", e.step, phase, loss_or_nan(e.loss)});
      if (e.heldout_loss) pending_.push_back(StepLoss{block, "", e.step, phase + "_heldout", *e.heldout_loss});
      if (global && e.heldout_loss) flush();
      break;
    }
    case EventKind::LayerFinished: {
      flush();
      const auto key = std::make_pair(e.block, e.layer);
      const auto last = last_loss_.find(key);
      const double loss = last != last_loss_.end() ? last->second : loss_or_nan(e.loss);
      layer_steps_.erase(key);
      if (last != last_loss_.end()) last_loss_.erase(last);
      db_.record_layer_metric(run_id_, LayerMetric{e.block, e.layer, config_, loss, loss_or_nan(e.loss),
                                                   e.data.value("seconds", 0.0), e.data.value("bits", 0.0)});
      break;
    }
    case EventKind::BlockFinished: flush(); break;
    case EventKind::Evaluation: {
      const std::string text = e.data.at("text").get<std::string>();
      db_.add_run_evaluation(run_id_, EvalResult{evaluation_dataset(text),
                                                 e.data.at("seqlen").get<int>(), e.data.at("windows").get<int>(),
                                                 e.data.at("perplexity").get<double>(), e.data.at("nll").get<double>(),
                                                 e.data.at("tokens").get<int64_t>(), e.data.at("seconds").get<double>()});
      break;
    }
    case EventKind::OutputWritten: {
      // AQLM writes codes (an HF AQLM folder); GPTQ and RTN write dequantized fp16 weights.
      const bool aqlm = db_.find_run(run_id_)->method == QuantMethod::Aqlm;
      db_.add_artifact(run_id_, output_folder_artifact(e.data.at("path").get<std::string>(), aqlm ? "hf-aqlm" : "hf-fp16",
                                                       e.data.at("bytes").get<int64_t>()));
      break;
    }
    case EventKind::RunFinished:
      flush();
      db_.finish_run(run_id_, RunOutput{e.data.at("bits_per_parameter").get<double>(), e.data.at("bytes").get<int64_t>()});
      break;
    case EventKind::RunFailed:
      flush();
      db_.set_run_status(run_id_, RunStatus::Failed, e.message.empty() ? "failed" : e.message);
      break;
    case EventKind::RunCancelled:
      flush();
      db_.set_run_status(run_id_, RunStatus::Paused);  // resumable from its checkpoint
      break;
    default: break;
  }
  if (pending_.size() >= kBatch) flush();
}

}  // namespace aqlm::store
