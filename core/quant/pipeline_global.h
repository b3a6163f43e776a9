#pragma once
// The pipeline's last phase with --global-epochs: global fine-tuning (core/quant/global_finetuner.h)
// of the assembled AQLM model against the source model, on the run's own calibration windows.
#include <atomic>
#include <functional>

#include "core/jobs/progress_event.h"
#include "core/quant/pipeline.h"

namespace aqlm {

struct Model;

// Tunes `output` in place (codebooks, scales and norms rounded to fp16, as saved). The windows
// are made again from the settings, so they are the ones the blocks were calibrated on.
// Emits one FinetuneStep per Adam step with phase "global" (block -1; loss: train KL,
// heldout_loss: held-out KL at each epoch's end) and a Message with the result.
// Throws Cancelled when `cancel` is set.
GlobalFinetuneReport run_global_finetune(const PipelineSettings& settings, const Model& source, Model& output,
                                         const std::function<void(ProgressEvent&)>& emit,
                                         const std::atomic<bool>* cancel);

}  // namespace aqlm
