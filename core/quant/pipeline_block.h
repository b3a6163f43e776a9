#pragma once
// The pipeline's work on one decoder block: its fp weights from the model, the weights of
// its quantized state, and passes of calibration windows through it that accumulate a
// linear's XTX, write the outputs, or compare them with the fp targets.
#include <atomic>
#include <cstdint>
#include <memory>

#include "core/quant/block_finetuner.h"
#include "core/quant/block_trainable.h"
#include "core/quant/compute_device.h"

namespace aqlm {

struct Model;
class ActivationStore;
class CudaBlockPass;
class ThreadPool;
class XtxAccumulator;

// Block `block`'s fp32 weights (a copy of that block only).
BlockWeights<float> load_block_weights(const Model& model, int block);

// The weights a (partly) quantized block computes with: AQLM linears dequantized, dense ones
// as they are.
BlockWeights<float> block_weights_of(ThreadPool& pool, const FinetuneBlock& block);

// Sums of squares of a pass that compares outputs with targets.
struct OutputError {
  double error = 0, target = 0;
  double relative() const { return target > 0 ? error / target : 0.0; }
};

// Runs windows through a block a micro-batch at a time.
class BlockPass {
 public:
  // micro_windows: windows per forward call (memory grows with it); cancel: checked between
  // micro-batches (throws Cancelled).
  // device Cuda: the passes run on the GPU (core/quant/pipeline_block_cuda.h); Error without one.
  BlockPass(const BlockShape& shape, int64_t micro_windows, ThreadPool& pool, const std::atomic<bool>* cancel,
            ComputeDevice device = ComputeDevice::Cpu);

  // Windows [first, first + count) of `inputs`. When xtx is given, adds the input of `linear`
  // to it; when outputs is given, writes the block's outputs there (same window indices); when
  // targets is given, returns the squared error against them.
  OutputError run(const BlockWeights<float>& weights, const ActivationStore& inputs, int64_t first, int64_t count,
                  ActivationStore* outputs, XtxAccumulator* xtx = nullptr, BlockLinear linear = kQProj,
                  const ActivationStore* targets = nullptr);

 private:
  TrainableBlock<float> block_;
  int64_t micro_windows_;
  ThreadPool& pool_;
  const std::atomic<bool>* cancel_;
  std::shared_ptr<CudaBlockPass> cuda_;
};

// Windows per forward call so that one call holds about `tokens` tokens (at least 1 window).
int64_t micro_batch_windows(int64_t seqlen, int64_t tokens = 2048);

}  // namespace aqlm
