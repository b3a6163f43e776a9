// Block fine-tuning on the GPU (see block_finetuner_cuda.h): block_finetuner.cpp's loop with the
// block, its gradients, the codebook / scale gradients and Adam on the device.
#include "core/quant/block_finetuner_cuda.h"

#include "core/common/error.h"
#include "core/quant/compute_device.h"

#ifdef AQLM_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <random>

#include "core/quant/block_cuda.h"
#include "core/quant/quant_cuda_util.h"
#include "kernels/cuda/quant_block_cuda.h"
#include "kernels/cuda/quant_layer_cuda.h"

namespace aqlm {

namespace {

using cuda::DeviceArray;

bool all_finite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

// block_finetuner.cpp's window checks, with its messages.
void check_windows(const BlockWindows& w, const BlockShape& shape, const char* what, bool may_be_empty) {
  if (may_be_empty && w.count == 0) return;
  AQLM_CHECK(w.count > 0, "block fine-tuning: no ", what, " windows");
  AQLM_CHECK(w.seqlen > 0, "block fine-tuning: ", what, " windows of ", w.seqlen, " tokens");
  AQLM_CHECK(w.hidden == shape.hidden, "block fine-tuning: ", what, " windows have ", w.hidden,
             " values per token but the block's hidden size is ", shape.hidden);
  AQLM_CHECK(bool(w.load), "block fine-tuning: the ", what, " windows have no loader");
}

cuda::LayerDims dims_of(const QuantizedLayer& q) {
  cuda::LayerDims d;
  d.out = q.out_features;
  d.in = q.in_features;
  d.g = q.config.group_size;
  d.M = q.config.num_codebooks;
  d.K = q.config.codebook_size();
  return d;
}

// One AQLM linear's trainable parameters on the device.
struct DeviceAqlm {
  int linear = 0;
  cuda::LayerDims dims;
  DeviceArray<uint16_t> codes;
  DeviceArray<float> codebooks, scales, d_codebooks, d_scales;
  CudaCodeIndex index;
};

// The windows (inputs and targets) on the device, or staged from the host per micro-batch.
class WindowSource {
 public:
  WindowSource(const BlockWindows& w, bool cache) : w_(w), per_window_(size_t(w.seqlen * w.hidden)), cache_(cache) {
    if (cache_ && w.count > 0) {
      x_.resize(size_t(w.count) * per_window_, "the calibration windows on the GPU");
      t_.resize(x_.size(), "the calibration targets on the GPU");
    }
  }
  // Loads window i from the host (checking it), into the cache when there is one.
  void load_host(int64_t i, float* x, float* t, const char* what) {
    w_.load(i, x, t);
    AQLM_CHECK(all_finite(x, per_window_) && all_finite(t, per_window_), "block fine-tuning: ", what, " window ", i,
               " holds NaN or Inf");
    if (cache_) {
      x_.upload(x, per_window_, size_t(i) * per_window_);
      t_.upload(t, per_window_, size_t(i) * per_window_);
    }
  }
  // Device pointers to windows idx[0..m) laid out contiguously: the cache's own memory when the
  // windows are consecutive, else copies into the staging buffers.
  std::pair<const float*, const float*> batch(const int64_t* idx, int64_t m, DeviceArray<float>& x_stage,
                                              DeviceArray<float>& t_stage, std::vector<float>& hx, std::vector<float>& ht,
                                              const char* what) {
    bool consecutive = cache_;
    for (int64_t i = 1; i < m && consecutive; ++i) consecutive = idx[i] == idx[0] + i;
    if (consecutive) return {x_.data() + size_t(idx[0]) * per_window_, t_.data() + size_t(idx[0]) * per_window_};
    for (int64_t i = 0; i < m; ++i) {
      if (cache_) {
        cuda::check(cudaMemcpy(x_stage.data() + size_t(i) * per_window_, x_.data() + size_t(idx[i]) * per_window_,
                               per_window_ * sizeof(float), cudaMemcpyDeviceToDevice), "gathering windows on the GPU");
        cuda::check(cudaMemcpy(t_stage.data() + size_t(i) * per_window_, t_.data() + size_t(idx[i]) * per_window_,
                               per_window_ * sizeof(float), cudaMemcpyDeviceToDevice), "gathering windows on the GPU");
      } else {
        w_.load(idx[i], hx.data(), ht.data());
        AQLM_CHECK(all_finite(hx.data(), per_window_) && all_finite(ht.data(), per_window_), "block fine-tuning: ", what,
                   " window ", idx[i], " holds NaN or Inf");
        x_stage.upload(hx.data(), per_window_, size_t(i) * per_window_);
        t_stage.upload(ht.data(), per_window_, size_t(i) * per_window_);
      }
    }
    return {x_stage.data(), t_stage.data()};
  }
  size_t per_window() const { return per_window_; }

 private:
  const BlockWindows& w_;
  size_t per_window_;
  bool cache_;
  DeviceArray<float> x_, t_;
};

struct Sums {
  double error = 0, target = 0;
};

}  // namespace

BlockFinetuneResult finetune_block_cuda(const BlockFinetuneOptions& o, FinetuneBlock& block,
                                        const BlockWindows& train, const BlockWindows& heldout,
                                        const std::function<void(const BlockFinetuneProgress&)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  BlockFinetuner checked(o);  // the option checks of the CPU path
  (void)checked;
  block.validate();
  check_windows(train, block.shape, "training", false);
  check_windows(heldout, block.shape, "held-out", true);
  require_cuda_quantization("block fine-tuning on the GPU");
  const BlockShape& shape = block.shape;
  const cuda::GemmPrecision precision = o.tf32 ? cuda::GemmPrecision::Tf32 : cuda::GemmPrecision::Fp32;

  // Device parameters: AQLM linears (codes frozen), dense ones frozen, norms and biases.
  CudaBlockWeights w;
  std::vector<DeviceAqlm> aqlm;
  std::array<bool, kBlockLinearCount> want_linear{};
  cuda::SortScratch sort;
  for (int l = 0; l < kBlockLinearCount; ++l) {
    if (!block.aqlm[size_t(l)]) {
      w.linear[size_t(l)].resize(block.dense[size_t(l)].size(), "frozen block weights");
      w.linear[size_t(l)].upload(block.dense[size_t(l)]);
      continue;
    }
    const QuantizedLayer& q = *block.aqlm[size_t(l)];
    DeviceAqlm a;
    a.linear = l;
    a.dims = dims_of(q);
    a.codes.resize(q.codes.size(), "AQLM codes");
    a.codes.upload(q.codes);
    a.codebooks.resize(q.codebooks.size(), "AQLM codebooks");
    a.codebooks.upload(q.codebooks);
    a.scales.resize(q.scales.size(), "AQLM scales");
    a.scales.upload(q.scales);
    a.d_codebooks.resize(q.codebooks.size(), "codebook gradients");
    a.d_scales.resize(q.scales.size(), "scale gradients");
    a.index.build(a.dims, a.codes.data(), sort);
    w.linear[size_t(l)].resize(size_t(q.out_features * q.in_features), "dequantized block weights");
    want_linear[size_t(l)] = o.train_codebooks || o.train_scales;
    aqlm.push_back(std::move(a));
  }
  const auto dequantize_all = [&] {
    for (DeviceAqlm& a : aqlm)
      cuda::dequantize_layer(a.dims, a.codes.data(), a.codebooks.data(), a.scales.data(), w.linear[size_t(a.linear)].data());
  };
  for (int i = 0; i < 3; ++i) {
    w.bias[size_t(i)].resize(block.bias[size_t(i)].size(), "block biases");
    if (!block.bias[size_t(i)].empty()) w.bias[size_t(i)].upload(block.bias[size_t(i)]);
  }
  w.input_norm.resize(block.input_norm.size(), "block norms");
  w.input_norm.upload(block.input_norm);
  w.post_attention_norm.resize(block.post_attention_norm.size(), "block norms");
  w.post_attention_norm.upload(block.post_attention_norm);
  dequantize_all();

  CudaBlockGradients grads;
  grads.allocate(shape, want_linear, true, true);
  CudaAdam adam(o.adam);
  // What Adam trains, with the host vectors each mirrors (downloaded after every step).
  std::vector<std::pair<DeviceArray<float>*, std::vector<float>*>> trainable;
  const auto add = [&](DeviceArray<float>& value, const DeviceArray<float>& gradient, std::vector<float>& host) {
    adam.add(value.data(), gradient.data(), value.size());
    trainable.emplace_back(&value, &host);
  };
  for (DeviceAqlm& a : aqlm) {
    QuantizedLayer& q = *block.aqlm[size_t(a.linear)];
    if (o.train_codebooks) add(a.codebooks, a.d_codebooks, q.codebooks);
    if (o.train_scales) add(a.scales, a.d_scales, q.scales);
  }
  if (o.train_norms) {
    add(w.input_norm, grads.input_norm, block.input_norm);
    add(w.post_attention_norm, grads.post_attention_norm, block.post_attention_norm);
  }
  if (o.train_biases && shape.attention_bias)
    for (int i = 0; i < 3; ++i) add(w.bias[size_t(i)], grads.bias[size_t(i)], block.bias[size_t(i)]);
  AQLM_CHECK(!trainable.empty(), "block fine-tuning: nothing to train (no AQLM linear and norms and biases frozen)");
  const auto sync_to_host = [&] {
    for (auto& [dev, host] : trainable) dev->download(host->data(), host->size());
  };

  // Memory plan: the windows stay on the GPU when they fit beside a micro-batch's activations.
  const int64_t seqlen = train.seqlen, micro = o.micro_batch_windows;
  const size_t per_window = size_t(seqlen * shape.hidden);
  const size_t micro_bytes = CudaTrainableBlock::activation_bytes(shape, micro, seqlen) + 4 * 4 * size_t(micro) * per_window;
  cuda::require_device_memory(micro_bytes + (size_t(256) << 20), "block fine-tuning of one micro-batch");
  const size_t window_bytes = size_t(train.count + heldout.count) * per_window * 2 * sizeof(float);
  // AQLM_CUDA_WINDOW_CACHE_MB caps the cache (the tests set 0 to exercise the streaming path).
  size_t cache_limit = cuda::device_memory().first;
  if (const char* cap = std::getenv("AQLM_CUDA_WINDOW_CACHE_MB")) cache_limit = std::min(cache_limit, size_t(std::atoll(cap)) << 20);
  const bool cache = window_bytes + micro_bytes + (size_t(1) << 30) < cache_limit;
  WindowSource train_src(train, cache), heldout_src(heldout, cache);

  // The loss normaliser: the mean square of every training target (one pass, which also checks
  // the windows for NaN and Inf and fills the GPU copy).
  std::vector<float> hx(per_window * size_t(micro)), ht(hx.size());
  double target_square_sum = 0;
  for (int64_t i = 0; i < train.count; ++i) {
    train_src.load_host(i, hx.data(), ht.data(), "training");
    for (size_t k = 0; k < per_window; ++k) target_square_sum += double(ht[k]) * double(ht[k]);
  }
  if (cache)
    for (int64_t i = 0; i < heldout.count; ++i) heldout_src.load_host(i, hx.data(), ht.data(), "held-out");
  const double target_mean_square = target_square_sum / (double(train.count) * double(per_window));
  AQLM_CHECK(target_mean_square > 0, "block fine-tuning: the training targets are all zero, so the relative loss is undefined");

  CudaTrainableBlock model(shape, precision);
  DeviceArray<float> x_stage(per_window * size_t(micro), "window staging"), t_stage(x_stage.size(), "window staging");
  DeviceArray<float> y(x_stage.size(), "block outputs"), dy(x_stage.size(), "output gradients");
  DeviceArray<double> partials(2 * cuda::kSquarePartials, "loss partial sums"), sums(2, "loss sums");
  const auto read_sums = [&] {
    Sums s;
    double v[2];
    sums.download(v, 2);
    s.error = v[0];
    s.target = v[1];
    return s;
  };

  BlockFinetuneResult result;
  std::vector<std::vector<float>> best;
  const auto snapshot = [&] {
    best.resize(trainable.size());
    for (size_t i = 0; i < trainable.size(); ++i) best[i] = *trainable[i].second;
  };
  HeldoutTracker tracker(o.patience);
  bool stop = false;
  std::vector<int64_t> all_heldout(static_cast<size_t>(std::max<int64_t>(heldout.count, 1)));
  std::iota(all_heldout.begin(), all_heldout.end(), int64_t(0));
  const auto evaluate_heldout = [&](int64_t step) {
    sums.zero();
    for (int64_t b = 0; b < heldout.count; b += micro) {
      const int64_t m = std::min(micro, heldout.count - b);
      const auto [x, t] = heldout_src.batch(all_heldout.data() + b, m, x_stage, t_stage, hx, ht, "held-out");
      model.forward(w, x, m, seqlen, y.data());
      cuda::squared_error(y.data(), t, size_t(m) * per_window, 0.0f, nullptr, partials.data(), sums.data());
    }
    const Sums s = read_sums();
    const double values = double(heldout.count) * double(per_window);
    const BlockMse mse{s.error / values, s.target > 0 ? s.error / s.target : 0.0};
    if (tracker.record(step, mse, result)) snapshot();
    stop = stop || tracker.stop();
    return mse;
  };
  if (heldout.count > 0) evaluate_heldout(0);

  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> order(static_cast<size_t>(train.count));
  std::iota(order.begin(), order.end(), int64_t(0));
  const int64_t steps_per_epoch = (train.count + o.batch_windows - 1) / o.batch_windows;
  for (int epoch = 0; epoch < o.max_epochs && !stop; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t s = 0; s < steps_per_epoch && !stop; ++s) {
      const int64_t begin = s * o.batch_windows, end = std::min(train.count, begin + o.batch_windows);
      const double values = double(end - begin) * double(per_window);
      const float gradient_scale = float(2.0 / (values * target_mean_square));  // d(relative MSE)/dy
      grads.zero();
      sums.zero();
      for (int64_t mb = begin; mb < end; mb += micro) {
        const int64_t m = std::min(micro, end - mb);
        const auto [x, t] = train_src.batch(order.data() + mb, m, x_stage, t_stage, hx, ht, "training");
        model.forward(w, x, m, seqlen, y.data());
        cuda::squared_error(y.data(), t, size_t(m) * per_window, gradient_scale, dy.data(), partials.data(), sums.data());
        model.backward(w, dy.data(), grads, nullptr);
      }
      const double error_sum = read_sums().error;
      AQLM_CHECK(std::isfinite(error_sum), "block fine-tuning: the loss became ", error_sum, " at step ", result.steps + 1,
                 " (learning rate ", o.adam.learning_rate, " too high?)");
      for (DeviceAqlm& a : aqlm) {  // aqlm_backward: the chain rule through the dequantization
        const float* d_weight = grads.linear[size_t(a.linear)].data();
        if (!d_weight) continue;
        cuda::codebook_gradient(a.dims, a.index.places.data(), a.index.offsets.data(), a.scales.data(), d_weight, 1.0,
                                a.d_codebooks.data());
        cuda::scale_gradient(a.dims, a.codes.data(), a.codebooks.data(), d_weight, 1.0, a.d_scales.data());
      }
      adam.step();
      dequantize_all();
      sync_to_host();
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
    for (size_t i = 0; i < trainable.size(); ++i) *trainable[i].second = best[i];
  result.seconds = elapsed();
  return result;
}

}  // namespace aqlm

#else  // no CUDA in this build

namespace aqlm {
BlockFinetuneResult finetune_block_cuda(const BlockFinetuneOptions&, FinetuneBlock&, const BlockWindows&,
                                        const BlockWindows&, const std::function<void(const BlockFinetuneProgress&)>&) {
  require_cuda_quantization("block fine-tuning on the GPU");
  fail("block fine-tuning on the GPU: no CUDA");
}
}  // namespace aqlm

#endif
