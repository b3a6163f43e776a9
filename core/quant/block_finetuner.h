#pragma once
// Block fine-tuning (REFERENCE.md section 3, step 3): once a decoder block's linears are
// quantized, keep the codes frozen and train the codebooks, scales, RMSNorm weights (and q/k/v
// biases) with Adam so the quantized block reproduces the recorded fp block outputs.
// Loss: MSE over the batch, divided by the mean square of the training targets (so it reads as
// a relative error); early stopping on held-out windows restores the best parameters.
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/quant/adam.h"
#include "core/quant/block_trainable.h"
#include "core/quant/compute_device.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

class ThreadPool;

// The block being tuned. Each linear is AQLM (codebooks and scales are tuned in place, codes
// frozen) or dense (frozen; its gradient still flows through). Norms and biases are tuned.
struct FinetuneBlock {
  BlockShape shape;
  std::array<std::optional<QuantizedLayer>, kBlockLinearCount> aqlm;  // in block_linear_names() order
  std::array<std::vector<float>, kBlockLinearCount> dense;            // [out, in] where aqlm is empty
  std::array<std::vector<float>, 3> bias;                             // q, k, v when shape.attention_bias
  std::vector<float> input_norm, post_attention_norm;                 // [hidden]

  // Error naming the linear or tensor that does not fit the shape.
  void validate() const;
};

// Calibration windows of one block: its fp inputs and the fp block's outputs, read through a
// callback so they may live in memory, in fp16 or on disk.
struct BlockWindows {
  int64_t count = 0, seqlen = 0, hidden = 0;
  // Writes window i's input and target ([seqlen, hidden] floats each) into x and target.
  std::function<void(int64_t i, float* x, float* target)> load;

  // Windows held in memory as [count, seqlen, hidden] arrays (kept alive by the caller).
  static BlockWindows in_memory(const float* inputs, const float* targets, int64_t count, int64_t seqlen,
                                int64_t hidden);
};

struct BlockMse {
  double mse = 0;           // mean over every value of (y - target)^2
  double relative_mse = 0;  // mse / mean(target^2)
};

struct BlockFinetuneOptions {
  // Adam with betas (0.9, 0.95) as the authors' block fine-tuning (their default lr is 1e-5 on
  // the plain MSE; Adam's steps do not depend on the loss scale, so normalising the loss
  // changes only eps's relative size). On SmolLM2-135M layer 5 (2x8g8, 32 windows of 256
  // tokens, 10 epochs) lr 1e-4 took the held-out relative MSE from 0.0130 to 0.0088, lr 1e-3 to 0.0084.
  AdamOptions adam{1e-4, 0.9, 0.95, 1e-8};
  int max_epochs = 10;
  int64_t batch_windows = 16;       // windows per Adam step (the last step of an epoch may have fewer)
  int64_t micro_batch_windows = 1;  // windows per forward/backward: peak memory scales with this
  int patience = 3;                 // held-out evaluations without improvement before stopping
  int64_t heldout_every_steps = 0;  // 0: evaluate the held-out windows after each epoch
  bool train_codebooks = true, train_scales = true, train_norms = true, train_biases = true;
  uint64_t seed = 0;                // the order of the training windows in each epoch
  ThreadPool* pool = nullptr;       // default: ThreadPool::global(); results do not depend on its size
  const std::atomic<bool>* cancel = nullptr;  // stops after the current step, best parameters restored
  // Cuda: the same loop on one GPU (core/quant/block_finetuner_cuda.h). tf32: its products on
  // TF32 tensor cores (~5e-4 relative per product; the loss it fits is ~1e-2), else exact fp32.
  ComputeDevice device = ComputeDevice::Cpu;
  bool tf32 = true;
};

// One Adam step, for the studio's plot and the CLI's log.
struct BlockFinetuneProgress {
  int epoch = 0;                     // 0-based
  int64_t step = 0;                  // 1-based, counted over all epochs
  int64_t steps_per_epoch = 0;
  BlockMse train;                    // of this step's batch
  std::optional<BlockMse> heldout;   // set when this step ended with a held-out evaluation
  double best_heldout_relative_mse = 0;
  double seconds = 0;                // since the start of run()
};

struct BlockFinetuneResult {
  BlockMse initial_heldout, best_heldout;  // zero when there are no held-out windows
  int64_t best_step = 0;                   // 0: the initial parameters were never beaten
  int epochs_run = 0;
  int64_t steps = 0;
  bool stopped_early = false, cancelled = false;
  double seconds = 0;
};

// The held-out bookkeeping of both fine-tuners (CPU and GPU), so they stop alike: the first
// evaluation (step 0) is the baseline and the first best; a lower one becomes the best; after
// `patience` evaluations in a row without improvement the run stops early.
// Global fine-tuning (global_finetuner.h) tracks its held-out KL with the same rule.
class HeldoutTracker {
 public:
  explicit HeldoutTracker(int patience) : patience_(patience) {}
  // Records the evaluation `value` (lower is better) after `step` steps; true when it is the
  // new best (the caller then keeps a copy of its parameters).
  bool record(int64_t step, double value);
  // The same for block fine-tuning's relative MSE, also filling `result`'s held-out fields.
  bool record(int64_t step, const BlockMse& mse, BlockFinetuneResult& result);
  bool stop() const { return stop_; }

 private:
  int patience_;
  double best_ = 0;
  int without_improvement_ = 0;
  bool stop_ = false;
};

// Whether the held-out windows are evaluated after the step just taken (step `s` of the
// epoch, `steps_done` in all): every heldout_every_steps steps, or at each epoch's end.
bool heldout_due(const BlockFinetuneOptions& options, int64_t steps_done, int64_t s, int64_t steps_per_epoch);

// The float weights `block` computes with, into `w`: AQLM linears dequantized, norms and biases
// copied; a dense (frozen) linear is copied only while `w` lacks it, so refreshing after every
// update costs the dequantization alone.
void refresh_block_weights(ThreadPool& pool, const FinetuneBlock& block, BlockWeights<float>& w);

class BlockFinetuner {
 public:
  // Error when an option is out of range.
  explicit BlockFinetuner(const BlockFinetuneOptions& options);

  // Tunes `block` in place on `train`; with held-out windows, evaluates them before training
  // and every heldout_every_steps steps (or each epoch), stops after `patience` evaluations
  // without improvement and leaves the best evaluated parameters in `block`. Without held-out
  // windows it runs max_epochs and keeps the last parameters.
  // Deterministic for a given seed, whatever the thread count. On an Error (a NaN window, a
  // diverging loss) the block keeps the parameters of the last completed step.
  BlockFinetuneResult run(FinetuneBlock& block, const BlockWindows& train, const BlockWindows& heldout,
                          const std::function<void(const BlockFinetuneProgress&)>& progress = {});

  const BlockFinetuneOptions& options() const { return options_; }

 private:
  BlockFinetuneOptions options_;
};

// The block's output error on `windows`, run micro_batch_windows at a time.
BlockMse evaluate_block_mse(const FinetuneBlock& block, const BlockWindows& windows, int64_t micro_batch_windows = 1,
                            ThreadPool* pool = nullptr);

}  // namespace aqlm
