#pragma once
// Block fine-tuning on one CUDA GPU: BlockFinetuner::run (block_finetuner.h) with the same
// options, window order, loss, early stopping and progress, the block's forward/backward on the
// device (core/quant/block_cuda.h). The calibration windows are copied to GPU memory once when
// they fit next to the block (planned from cudaMemGetInfo), else streamed from host memory for
// every micro-batch (the environment variable AQLM_CUDA_WINDOW_CACHE_MB caps that copy; 0 streams
// always). The host FinetuneBlock holds the parameters of the last completed step after
// every step (so an Error leaves it as the CPU path does) and the best evaluated ones at the end.
#include <functional>

#include "core/quant/block_finetuner.h"

namespace aqlm {

// options.device is ignored; options.pool is not used. Errors: those of BlockFinetuner::run, no
// GPU (or a build without CUDA), or not enough GPU memory for one micro-batch.
BlockFinetuneResult finetune_block_cuda(const BlockFinetuneOptions& options, FinetuneBlock& block,
                                        const BlockWindows& train, const BlockWindows& heldout,
                                        const std::function<void(const BlockFinetuneProgress&)>& progress = {});

}  // namespace aqlm
