#include "core/quant/block_finetuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <span>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/block_finetuner_cuda.h"

namespace aqlm {

namespace {

const std::string& linear_name(int l) { return block_linear_names()[size_t(l)]; }

bool all_finite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

void check_windows(const BlockWindows& w, const BlockShape& shape, const char* what, bool may_be_empty) {
  if (may_be_empty && w.count == 0) return;
  AQLM_CHECK(w.count > 0, "block fine-tuning: no ", what, " windows");
  AQLM_CHECK(w.seqlen > 0, "block fine-tuning: ", what, " windows of ", w.seqlen, " tokens");
  AQLM_CHECK(w.hidden == shape.hidden, "block fine-tuning: ", what, " windows have ", w.hidden,
             " values per token but the block's hidden size is ", shape.hidden);
  AQLM_CHECK(bool(w.load), "block fine-tuning: the ", what, " windows have no loader");
}

// Runs `windows` through the block micro_batch windows at a time: sums of squared errors and
// of squared targets, in double, in window order.
struct SquareSums {
  double error = 0, target = 0, values = 0;
  BlockMse mse() const { return {error / values, target > 0 ? error / target : 0.0}; }
};

SquareSums square_sums(TrainableBlock<float>& model, const BlockWeights<float>& w, const BlockWindows& windows,
                       int64_t micro_batch, const char* what) {
  const size_t per_window = size_t(windows.seqlen * windows.hidden);
  const int64_t micro = std::min(micro_batch, windows.count);
  std::vector<float> x(size_t(micro) * per_window), t(x.size()), y(x.size());
  SquareSums sums;
  for (int64_t begin = 0; begin < windows.count; begin += micro) {
    const int64_t m = std::min(micro, windows.count - begin);
    for (int64_t i = 0; i < m; ++i) {
      windows.load(begin + i, x.data() + size_t(i) * per_window, t.data() + size_t(i) * per_window);
      AQLM_CHECK(all_finite(x.data() + size_t(i) * per_window, per_window) &&
                     all_finite(t.data() + size_t(i) * per_window, per_window),
                 "block fine-tuning: ", what, " window ", begin + i, " holds NaN or Inf");
    }
    model.forward(w, x.data(), m, windows.seqlen, y.data());
    for (size_t i = 0; i < size_t(m) * per_window; ++i) {
      const double d = double(y[i]) - double(t[i]);
      sums.error += d * d;
      sums.target += double(t[i]) * double(t[i]);
    }
  }
  sums.values = double(windows.count) * double(per_window);
  return sums;
}

}  // namespace

void FinetuneBlock::validate() const {
  shape.validate();
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const int64_t out = shape.out_features(BlockLinear(l)), in = shape.in_features(BlockLinear(l));
    const std::string& name = linear_name(l);
    if (aqlm[size_t(l)]) {
      const QuantizedLayer& q = *aqlm[size_t(l)];
      AQLM_CHECK(dense[size_t(l)].empty(), "block fine-tuning: ", name, " is given both as AQLM and as a dense weight");
      AQLM_CHECK(q.out_features == out && q.in_features == in, "block fine-tuning: ", name, " is [", q.out_features,
                 ", ", q.in_features, "] but the block needs [", out, ", ", in, "]");
      q.validate("block fine-tuning: " + name);
    } else {
      AQLM_CHECK(int64_t(dense[size_t(l)].size()) == out * in, "block fine-tuning: ", name, " dense weight has ",
                 dense[size_t(l)].size(), " values, expected ", out, " x ", in);
    }
  }
  for (int i = 0; i < 3; ++i) {
    const size_t expected = shape.attention_bias ? size_t(shape.out_features(BlockLinear(i))) : 0;
    AQLM_CHECK(bias[size_t(i)].size() == expected, "block fine-tuning: ", linear_name(i), " bias has ",
               bias[size_t(i)].size(), " values, expected ", expected);
  }
  AQLM_CHECK(int64_t(input_norm.size()) == shape.hidden && int64_t(post_attention_norm.size()) == shape.hidden,
             "block fine-tuning: the norm weights have ", input_norm.size(), " and ", post_attention_norm.size(),
             " values, expected ", shape.hidden);
}

void refresh_block_weights(ThreadPool& pool, const FinetuneBlock& block, BlockWeights<float>& w) {
  for (int l = 0; l < kBlockLinearCount; ++l) {
    if (block.aqlm[size_t(l)]) {
      w.linear[size_t(l)].resize(size_t(block.aqlm[size_t(l)]->out_features * block.aqlm[size_t(l)]->in_features));
      aqlm_dequantize(pool, aqlm_view(*block.aqlm[size_t(l)]), w.linear[size_t(l)].data());
    } else if (w.linear[size_t(l)].empty()) {
      w.linear[size_t(l)] = block.dense[size_t(l)];  // frozen: copied once
    }
  }
  w.bias = block.bias;
  w.input_norm = block.input_norm;
  w.post_attention_norm = block.post_attention_norm;
}

BlockWindows BlockWindows::in_memory(const float* inputs, const float* targets, int64_t count, int64_t seqlen,
                                     int64_t hidden) {
  BlockWindows w;
  w.count = count;
  w.seqlen = seqlen;
  w.hidden = hidden;
  const size_t per_window = size_t(seqlen * hidden);
  w.load = [inputs, targets, per_window](int64_t i, float* x, float* t) {
    std::copy(inputs + size_t(i) * per_window, inputs + size_t(i + 1) * per_window, x);
    std::copy(targets + size_t(i) * per_window, targets + size_t(i + 1) * per_window, t);
  };
  return w;
}

BlockMse evaluate_block_mse(const FinetuneBlock& block, const BlockWindows& windows, int64_t micro_batch_windows,
                            ThreadPool* pool) {
  block.validate();
  check_windows(windows, block.shape, "evaluation", false);
  AQLM_CHECK(micro_batch_windows >= 1, "block evaluation: micro-batch of ", micro_batch_windows, " windows");
  ThreadPool& p = pool ? *pool : ThreadPool::global();
  BlockWeights<float> w;
  refresh_block_weights(p, block, w);
  TrainableBlock<float> model(block.shape, &p);
  return square_sums(model, w, windows, micro_batch_windows, "evaluation").mse();
}

BlockFinetuner::BlockFinetuner(const BlockFinetuneOptions& o) : options_(o) {
  [[maybe_unused]] const Adam adam_options_check(o.adam);  // throws on bad Adam options
  AQLM_CHECK(o.max_epochs >= 1, "block fine-tuning: max_epochs ", o.max_epochs, " must be at least 1");
  AQLM_CHECK(o.batch_windows >= 1, "block fine-tuning: batch of ", o.batch_windows, " windows");
  AQLM_CHECK(o.micro_batch_windows >= 1 && o.micro_batch_windows <= o.batch_windows, "block fine-tuning: micro-batch of ",
             o.micro_batch_windows, " windows must be between 1 and the batch (", o.batch_windows, " windows)");
  AQLM_CHECK(o.patience >= 1, "block fine-tuning: patience ", o.patience, " must be at least 1");
  AQLM_CHECK(o.heldout_every_steps >= 0, "block fine-tuning: heldout_every_steps ", o.heldout_every_steps,
             " must not be negative");
}

bool HeldoutTracker::record(int64_t step, double value) {
  if (step == 0 || value < best_) {
    best_ = value;
    without_improvement_ = 0;
    return true;
  }
  if (++without_improvement_ >= patience_) stop_ = true;
  return false;
}

bool HeldoutTracker::record(int64_t step, const BlockMse& mse, BlockFinetuneResult& result) {
  const bool best = record(step, mse.relative_mse);
  if (step == 0) result.initial_heldout = mse;
  if (best) {
    result.best_heldout = mse;
    result.best_step = step;
  }
  result.stopped_early = stop_;
  return best;
}

bool heldout_due(const BlockFinetuneOptions& options, int64_t steps_done, int64_t s, int64_t steps_per_epoch) {
  return options.heldout_every_steps > 0 ? steps_done % options.heldout_every_steps == 0 : s == steps_per_epoch - 1;
}

BlockFinetuneResult BlockFinetuner::run(FinetuneBlock& block, const BlockWindows& train, const BlockWindows& heldout,
                                        const std::function<void(const BlockFinetuneProgress&)>& progress) {
  if (options_.device == ComputeDevice::Cuda) return finetune_block_cuda(options_, block, train, heldout, progress);
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const BlockFinetuneOptions& o = options_;
  block.validate();
  check_windows(train, block.shape, "training", false);
  check_windows(heldout, block.shape, "held-out", true);
  ThreadPool& pool = o.pool ? *o.pool : ThreadPool::global();
  const BlockShape& shape = block.shape;

  // Gradients and the parameters Adam updates (the block's own vectors, so the block always
  // holds the latest values).
  std::array<bool, kBlockLinearCount> want_linear{};
  for (int l = 0; l < kBlockLinearCount; ++l)
    want_linear[size_t(l)] = block.aqlm[size_t(l)].has_value() && (o.train_codebooks || o.train_scales);
  BlockGradients<float> grads;
  grads.allocate(shape, want_linear);
  std::array<std::vector<float>, kBlockLinearCount> d_codebooks, d_scales;
  Adam adam(o.adam);
  std::vector<std::span<float>> trainable;
  const auto add = [&](std::vector<float>& value, const std::vector<float>& gradient) {
    adam.add(value, gradient);
    trainable.emplace_back(value);
  };
  for (int l = 0; l < kBlockLinearCount; ++l) {
    if (!block.aqlm[size_t(l)]) continue;
    QuantizedLayer& q = *block.aqlm[size_t(l)];
    d_codebooks[size_t(l)].assign(q.codebooks.size(), 0.0f);
    d_scales[size_t(l)].assign(q.scales.size(), 0.0f);
    if (o.train_codebooks) add(q.codebooks, d_codebooks[size_t(l)]);
    if (o.train_scales) add(q.scales, d_scales[size_t(l)]);
  }
  if (o.train_norms) {
    add(block.input_norm, grads.input_norm);
    add(block.post_attention_norm, grads.post_attention_norm);
  }
  if (o.train_biases && shape.attention_bias)
    for (int i = 0; i < 3; ++i) add(block.bias[size_t(i)], grads.bias[size_t(i)]);
  AQLM_CHECK(!trainable.empty(), "block fine-tuning: nothing to train (no AQLM linear and norms and biases frozen)");

  // The loss normaliser: the mean square of every training target (one pass, which also
  // checks the windows for NaN and Inf).
  const size_t per_window = size_t(train.seqlen * train.hidden);
  std::vector<float> x(size_t(o.micro_batch_windows) * per_window), t(x.size()), y(x.size());
  double target_square_sum = 0;
  for (int64_t i = 0; i < train.count; ++i) {
    train.load(i, x.data(), t.data());
    AQLM_CHECK(all_finite(x.data(), per_window) && all_finite(t.data(), per_window), "block fine-tuning: training window ",
               i, " holds NaN or Inf");
    for (size_t k = 0; k < per_window; ++k) target_square_sum += double(t[k]) * double(t[k]);
  }
  const double target_mean_square = target_square_sum / (double(train.count) * double(per_window));
  AQLM_CHECK(target_mean_square > 0, "block fine-tuning: the training targets are all zero, so the relative loss is undefined");

  BlockWeights<float> w;
  refresh_block_weights(pool, block, w);
  TrainableBlock<float> model(shape, &pool);

  BlockFinetuneResult result;
  std::vector<std::vector<float>> best;
  const auto snapshot = [&] {
    best.resize(trainable.size());
    for (size_t i = 0; i < trainable.size(); ++i) best[i].assign(trainable[i].begin(), trainable[i].end());
  };
  HeldoutTracker tracker(o.patience);
  bool stop = false;
  const auto evaluate_heldout = [&](int64_t step) {
    const BlockMse m = square_sums(model, w, heldout, o.micro_batch_windows, "held-out").mse();
    if (tracker.record(step, m, result)) snapshot();
    stop = stop || tracker.stop();
    return m;
  };
  if (heldout.count > 0) evaluate_heldout(0);

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(size_t(train.count));
  std::iota(order.begin(), order.end(), int64_t(0));
  const int64_t steps_per_epoch = (train.count + o.batch_windows - 1) / o.batch_windows;
  for (int epoch = 0; epoch < o.max_epochs && !stop; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t s = 0; s < steps_per_epoch && !stop; ++s) {
      const int64_t begin = s * o.batch_windows, end = std::min(train.count, begin + o.batch_windows);
      const double values = double(end - begin) * double(per_window);
      // d(relative MSE)/dy = 2 (y - t) / (values * mean square of the targets)
      const float gradient_scale = float(2.0 / (values * target_mean_square));
      grads.zero();
      double error_sum = 0;
      for (int64_t mb = begin; mb < end; mb += o.micro_batch_windows) {
        const int64_t m = std::min(o.micro_batch_windows, end - mb);
        for (int64_t i = 0; i < m; ++i)
          train.load(order[size_t(mb + i)], x.data() + size_t(i) * per_window, t.data() + size_t(i) * per_window);
        model.forward(w, x.data(), m, train.seqlen, y.data());
        for (size_t k = 0; k < size_t(m) * per_window; ++k) {
          const float d = y[k] - t[k];
          error_sum += double(d) * double(d);
          y[k] = d * gradient_scale;
        }
        model.backward(w, y.data(), grads, nullptr);
      }
      AQLM_CHECK(std::isfinite(error_sum), "block fine-tuning: the loss became ", error_sum, " at step ",
                 result.steps + 1, " (learning rate ", o.adam.learning_rate, " too high?)");
      for (int l = 0; l < kBlockLinearCount; ++l) {
        if (!want_linear[size_t(l)]) continue;
        std::fill(d_codebooks[size_t(l)].begin(), d_codebooks[size_t(l)].end(), 0.0f);
        std::fill(d_scales[size_t(l)].begin(), d_scales[size_t(l)].end(), 0.0f);
        aqlm_backward(pool, aqlm_view(*block.aqlm[size_t(l)]), grads.linear[size_t(l)].data(),
                      d_codebooks[size_t(l)].data(), d_scales[size_t(l)].data());
      }
      adam.step();
      refresh_block_weights(pool, block, w);
      ++result.steps;

      BlockFinetuneProgress p;
      p.epoch = epoch;
      p.step = result.steps;
      p.steps_per_epoch = steps_per_epoch;
      p.train = {error_sum / values, error_sum / values / target_mean_square};
      if (heldout.count > 0 && heldout_due(o, result.steps, s, steps_per_epoch)) p.heldout = evaluate_heldout(result.steps);
      p.best_heldout_relative_mse = result.best_heldout.relative_mse;
      p.seconds = elapsed();
      if (progress) progress(p);
      if (o.cancel && o.cancel->load()) stop = result.cancelled = true;
    }
    ++result.epochs_run;
  }
  if (heldout.count > 0)  // the best evaluated parameters
    for (size_t i = 0; i < trainable.size(); ++i) std::copy(best[i].begin(), best[i].end(), trainable[i].begin());
  result.seconds = elapsed();
  return result;
}

}  // namespace aqlm
