#pragma once
// A training-mode decoder block (Llama / Mistral / Qwen2, the math of Hugging Face's
// modeling code) with a hand-written backward pass:
//   h = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = rmsnorm(x) * w_in
//   y = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                       n2 = rmsnorm(h) * w_post
// on micro-batches of windows [batch, seqlen, hidden]; every window starts at position 0.
// Templated on the scalar: float for fine-tuning, double for finite-difference checks.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/model/model_config.h"
#include "core/quant/block_ops.h"

namespace aqlm {

class ThreadPool;

// The seven projections, in the order of block_linear_names().
enum BlockLinear : int { kQProj, kKProj, kVProj, kOProj, kGateProj, kUpProj, kDownProj, kBlockLinearCount };

struct BlockShape {
  int64_t hidden = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0, intermediate = 0;
  double rms_norm_eps = 1e-5;
  std::vector<double> rope_inv_freq;  // head_dim / 2 inverse frequencies, scaling applied
  bool attention_bias = false;        // q/k/v biases (Qwen2)
  int64_t sliding_window = 0;         // Mistral; 0 = none

  static BlockShape from_config(const ModelConfig& config);
  void validate() const;  // Error naming the inconsistent field
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  int64_t out_features(BlockLinear l) const;
  int64_t in_features(BlockLinear l) const;
  // Activation memory, in floats per token of a micro-batch. forward() keeps
  //   x, n1, h, n2 (4 hidden) + q, attention output (2 q_dim) + k, v (2 kv_dim)
  //   + gate, up (2 intermediate) + softmax log-sum-exps (num_heads) + two inverse RMS;
  // forward/backward scratch adds 2 hidden + 2 q_dim + 2 kv_dim + 2 intermediate.
  // Attention probabilities are recomputed in backward, never stored: nothing grows with
  // seqlen^2. Kept / total: SmolLM2-135M 6,923 / 12,683 floats (27 / 50 KiB per token);
  // Llama-2-7B 54,818 / 101,410 floats (214 / 396 KiB per token, so a 4096-token window
  // needs 1.55 GiB). Peak memory therefore scales with the micro-batch, not the batch.
  size_t kept_floats_per_token() const;
  size_t activation_floats_per_token() const;  // kept + scratch
};

// HF's inverse RoPE frequencies 1 / theta^(2i/d), with "linear" or "llama3" scaling applied
// (transformers' _compute_llama3_parameters), in double.
std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta, const RopeScaling& scaling);

template <typename T>
struct BlockWeights {
  std::array<std::vector<T>, kBlockLinearCount> linear;  // [out, in] row-major
  std::array<std::vector<T>, 3> bias;                    // q, k, v biases when shape.attention_bias
  std::vector<T> input_norm, post_attention_norm;        // [hidden]
  void validate(const BlockShape& shape) const;          // Error naming the tensor of a wrong size
};

// Gradients, accumulated (+=) by backward(). An empty linear entry means "frozen": its
// weight gradient is not computed (the gradient still flows through the layer).
template <typename T>
struct BlockGradients {
  std::array<std::vector<T>, kBlockLinearCount> linear;
  std::array<std::vector<T>, 3> bias;
  std::vector<T> input_norm, post_attention_norm;
  // Sizes every gradient for `shape` (linear ones only where want_linear[l]) and zeroes it.
  void allocate(const BlockShape& shape, const std::array<bool, kBlockLinearCount>& want_linear);
  void zero();
};

template <typename T>
class TrainableBlock {
 public:
  // pool: where the work runs (default the global pool); results do not depend on its size.
  explicit TrainableBlock(const BlockShape& shape, ThreadPool* pool = nullptr);
  const BlockShape& shape() const { return shape_; }

  // y = block(x) for `windows` windows of `seqlen` tokens, x and y [windows, seqlen, hidden].
  // Keeps the activations backward() needs (shape.kept_floats_per_token() per token).
  void forward(const BlockWeights<T>& w, const T* x, int64_t windows, int64_t seqlen, T* y);

  // Back-propagates dy [windows, seqlen, hidden] through the last forward() (same weights):
  // accumulates into grads (see BlockGradients) and, when dx is not null, writes the
  // gradient w.r.t. x. dy and dx may be the same buffer.
  void backward(const BlockWeights<T>& w, const T* dy, BlockGradients<T>& grads, T* dx);

  // After forward() and until backward(): the input of linear l, [tokens(), in_features(l)]
  // (n1 for q/k/v, the attention output for o_proj, n2 for gate/up, silu(gate) * up for
  // down_proj), from which a calibration pipeline accumulates each layer's XTX.
  const T* linear_input(BlockLinear l) const;
  int64_t tokens() const { return tokens_; }

 private:
  void resize(int64_t windows, int64_t seqlen);

  BlockShape shape_;
  ThreadPool* pool_;
  int64_t windows_ = 0, seqlen_ = 0, tokens_ = 0;
  block_ops::RopeTable rope_;
  // Kept by forward() for backward().
  std::vector<T> x_, n1_, inv_rms1_, q_, k_, v_, attn_, lse_, h_, n2_, inv_rms2_, gate_, up_;
  // Scratch of forward (act) and backward.
  std::vector<T> act_, d_h_, d_n_, d_gate_, d_up_, d_attn_, d_q_, d_k_, d_v_;
};

extern template class TrainableBlock<float>;
extern template class TrainableBlock<double>;

}  // namespace aqlm
