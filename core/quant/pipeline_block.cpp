#include "core/quant/pipeline_block.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/jobs/cancelled.h"
#include "core/model/model.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/pipeline_activations.h"
#include "core/quant/pipeline_block_cuda.h"
#include "core/quant/pipeline_xtx.h"

namespace aqlm {

BlockWeights<float> load_block_weights(const Model& model, int block) {
  const std::string prefix = layer_prefix(block);
  const auto& names = block_linear_names();
  BlockWeights<float> w;
  for (int l = 0; l < kBlockLinearCount; ++l) w.linear[size_t(l)] = model.weights.to_f32(prefix + names[size_t(l)] + ".weight");
  if (model.config.attention_bias)
    for (int i = 0; i < 3; ++i) w.bias[size_t(i)] = model.weights.to_f32(prefix + names[size_t(i)] + ".bias");
  w.input_norm = model.weights.to_f32(prefix + "input_layernorm.weight");
  w.post_attention_norm = model.weights.to_f32(prefix + "post_attention_layernorm.weight");
  return w;
}

BlockWeights<float> block_weights_of(ThreadPool& pool, const FinetuneBlock& block) {
  BlockWeights<float> w;
  refresh_block_weights(pool, block, w);
  return w;
}

int64_t micro_batch_windows(int64_t seqlen, int64_t tokens) { return std::max<int64_t>(1, tokens / seqlen); }

BlockPass::BlockPass(const BlockShape& shape, int64_t micro_windows, ThreadPool& pool, const std::atomic<bool>* cancel,
                     ComputeDevice device)
    : block_(shape, &pool), micro_windows_(micro_windows), pool_(pool), cancel_(cancel) {
  if (device == ComputeDevice::Cuda) cuda_ = make_cuda_block_pass(shape, micro_windows, cancel);
}

OutputError BlockPass::run(const BlockWeights<float>& w, const ActivationStore& inputs, int64_t first, int64_t count,
                           ActivationStore* outputs, XtxAccumulator* xtx, BlockLinear linear,
                           const ActivationStore* targets) {
  if (cuda_) return run_cuda_block_pass(*cuda_, w, inputs, first, count, outputs, xtx, linear, targets);
  const int64_t seqlen = inputs.seqlen();
  const size_t per_window = inputs.window_values();
  const int64_t micro = std::max<int64_t>(1, std::min(micro_windows_, count));
  std::vector<float> x(size_t(micro) * per_window), y(x.size()), t(targets ? per_window : 0);
  OutputError sums;
  for (int64_t begin = 0; begin < count; begin += micro) {
    if (cancel_ && cancel_->load()) throw Cancelled("cancelled");
    const int64_t m = std::min(micro, count - begin);
    for (int64_t i = 0; i < m; ++i) inputs.read(first + begin + i, x.data() + size_t(i) * per_window);
    block_.forward(w, x.data(), m, seqlen, y.data());
    if (xtx) {
      const int64_t in = block_.shape().in_features(linear);
      xtx->add(pool_, block_.linear_input(linear), block_.tokens(), in);
    }
    for (int64_t i = 0; i < m; ++i) {
      const float* yi = y.data() + size_t(i) * per_window;
      if (outputs) outputs->write(first + begin + i, yi);
      if (targets) {
        targets->read(first + begin + i, t.data());
        for (size_t k = 0; k < per_window; ++k) {
          const double d = double(yi[k]) - double(t[k]);
          sums.error += d * d;
          sums.target += double(t[k]) * double(t[k]);
        }
      }
    }
  }
  return sums;
}

}  // namespace aqlm
