#include "core/quant/pipeline_global.h"

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/jobs/cancelled.h"
#include "core/model/model.h"
#include "core/quant/calibration.h"
#include "core/quant/global_finetuner.h"

namespace aqlm {

GlobalFinetuneReport run_global_finetune(const PipelineSettings& s, const Model& source, Model& output,
                                         const std::function<void(ProgressEvent&)>& emit,
                                         const std::atomic<bool>* cancel) {
  const CalibrationSet set =
      make_calibration_set(*source.tokenizer, s.resolved_calibration_files(), s.calibration_options());
  ThreadPool& pool = ThreadPool::global();
  check_teacher_fits(source.config, output.config);
  const TeacherOutputs train = run_teacher(source, set.train, set.train_windows, set.seqlen, pool, cancel);
  const TeacherOutputs heldout = run_teacher(source, set.heldout, set.heldout_windows, set.seqlen, pool, cancel);

  FinetuneModel tuned = finetune_model_of(output);
  GlobalFinetuneOptions o;
  o.adam.learning_rate = s.global_finetune_learning_rate;
  o.max_epochs = s.global_finetune_epochs;
  o.batch_windows = s.global_finetune_batch;
  o.patience = s.global_finetune_epochs;  // the best epoch is kept; every epoch runs
  o.seed = s.seed;
  o.cancel = cancel;
  GlobalFinetuner finetuner(o);
  const GlobalFinetuneResult r =
      finetuner.run(tuned, set.train, train, set.heldout, heldout, [&](const GlobalFinetuneProgress& p) {
        ProgressEvent e;
        e.kind = EventKind::FinetuneStep;
        e.phase = "global";
        e.epoch = p.epoch;
        e.step = p.step;
        e.steps = p.steps_per_epoch * o.max_epochs;
        e.loss = p.train_kl;
        e.heldout_loss = p.heldout_kl;
        e.eta_s = p.seconds / double(p.step) * double(e.steps - p.step);
        emit(e);
      });
  if (r.cancelled) throw Cancelled("cancelled");
  store_finetuned(tuned, output);

  GlobalFinetuneReport report{r.initial_heldout_kl, r.best_heldout_kl, r.steps, r.best_step,
                              r.epochs_run,         r.stopped_early,    r.seconds};
  ProgressEvent m;
  m.kind = EventKind::Message;
  m.message = str("global fine-tuning: held-out KL ", report.heldout_kl_before, " -> ", report.heldout_kl_after,
                  " nats per token after ", report.steps, " steps");
  emit(m);
  return report;
}

}  // namespace aqlm
