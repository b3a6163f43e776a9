#include "core/quant/block_trainable.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/common/error.h"
#include "core/common/thread_pool.h"

namespace aqlm {

// ---------------------------------------------------------------------------- shape

std::vector<double> rope_inverse_frequencies(int64_t head_dim, double theta, const RopeScaling& scaling) {
  AQLM_CHECK(head_dim > 0 && head_dim % 2 == 0, "RoPE: head_dim ", head_dim, " must be positive and even");
  AQLM_CHECK(theta > 0, "RoPE: rope_theta ", theta, " must be positive");
  std::vector<double> inv(size_t(head_dim / 2));
  for (size_t i = 0; i < inv.size(); ++i) inv[i] = 1.0 / std::pow(theta, double(2 * i) / double(head_dim));
  if (scaling.type.empty()) return inv;
  AQLM_CHECK(scaling.factor > 0, "RoPE: rope_scaling factor ", scaling.factor, " must be positive");
  if (scaling.type == "linear") {
    for (double& f : inv) f /= scaling.factor;
  } else if (scaling.type == "llama3") {
    AQLM_CHECK(scaling.high_freq_factor > scaling.low_freq_factor && scaling.low_freq_factor > 0 &&
                   scaling.original_max_position_embeddings > 0,
               "RoPE: llama3 scaling needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
    const double old_context = scaling.original_max_position_embeddings;
    const double low_freq_wavelen = old_context / scaling.low_freq_factor;
    const double high_freq_wavelen = old_context / scaling.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen < high_freq_wavelen) continue;  // high frequencies are kept
      if (wavelen > low_freq_wavelen) {           // low frequencies are divided by the factor
        f /= scaling.factor;
      } else {  // in between: interpolated
        const double smooth = (old_context / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1 - smooth) * f / scaling.factor + smooth * f;
      }
    }
  } else {
    fail("RoPE: rope_scaling type '", scaling.type, "' is not supported (supported: linear, llama3)");
  }
  return inv;
}

BlockShape BlockShape::from_config(const ModelConfig& c) {
  BlockShape s;
  s.hidden = c.hidden_size;
  s.num_heads = c.num_heads;
  s.num_kv_heads = c.num_kv_heads;
  s.head_dim = c.head_dim;
  s.intermediate = c.intermediate_size;
  s.rms_norm_eps = c.rms_norm_eps;
  s.rope_inv_freq = rope_inverse_frequencies(c.head_dim, c.rope_theta, c.rope_scaling);
  s.attention_bias = c.attention_bias;
  s.sliding_window = c.sliding_window;
  s.validate();
  return s;
}

void BlockShape::validate() const {
  AQLM_CHECK(hidden > 0 && intermediate > 0, "block: hidden size ", hidden, " and intermediate size ", intermediate,
             " must be positive");
  AQLM_CHECK(num_heads > 0 && num_kv_heads > 0 && num_heads % num_kv_heads == 0, "block: ", num_heads,
             " attention heads do not split into groups of ", num_kv_heads, " KV heads");
  AQLM_CHECK(head_dim > 0 && head_dim % 2 == 0, "block: head_dim ", head_dim, " must be positive and even");
  AQLM_CHECK(int64_t(rope_inv_freq.size()) == head_dim / 2, "block: ", rope_inv_freq.size(),
             " RoPE inverse frequencies given, expected head_dim / 2 = ", head_dim / 2);
  AQLM_CHECK(rms_norm_eps > 0, "block: rms_norm_eps ", rms_norm_eps, " must be positive");
  AQLM_CHECK(sliding_window >= 0, "block: sliding window ", sliding_window, " must not be negative");
}

int64_t BlockShape::out_features(BlockLinear l) const {
  switch (l) {
    case kQProj: return q_dim();
    case kKProj:
    case kVProj: return kv_dim();
    case kOProj:
    case kDownProj: return hidden;
    case kGateProj:
    case kUpProj: return intermediate;
    default: break;
  }
  fail("block: no linear layer number ", int(l));
}

int64_t BlockShape::in_features(BlockLinear l) const {
  switch (l) {
    case kQProj:
    case kKProj:
    case kVProj:
    case kGateProj:
    case kUpProj: return hidden;
    case kOProj: return q_dim();
    case kDownProj: return intermediate;
    default: break;
  }
  fail("block: no linear layer number ", int(l));
}

size_t BlockShape::kept_floats_per_token() const {
  return size_t(4 * hidden + 2 * q_dim() + 2 * kv_dim() + 2 * intermediate + num_heads + 2);
}

size_t BlockShape::activation_floats_per_token() const {
  return kept_floats_per_token() + size_t(2 * hidden + 2 * q_dim() + 2 * kv_dim() + 2 * intermediate);
}

// ---------------------------------------------------------------------------- weights, gradients

template <typename T>
void BlockWeights<T>::validate(const BlockShape& s) const {
  const auto& names = block_linear_names();
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const int64_t expected = s.out_features(BlockLinear(l)) * s.in_features(BlockLinear(l));
    AQLM_CHECK(int64_t(linear[size_t(l)].size()) == expected, "block: ", names[size_t(l)], " weight has ",
               linear[size_t(l)].size(), " values, expected ", s.out_features(BlockLinear(l)), " x ",
               s.in_features(BlockLinear(l)));
  }
  for (int i = 0; i < 3; ++i) {
    const size_t expected = s.attention_bias ? size_t(s.out_features(BlockLinear(i))) : 0;
    AQLM_CHECK(bias[size_t(i)].size() == expected, "block: ", names[size_t(i)], " bias has ", bias[size_t(i)].size(),
               " values, expected ", expected, s.attention_bias ? "" : " (the block has no attention biases)");
  }
  AQLM_CHECK(int64_t(input_norm.size()) == s.hidden, "block: input_layernorm weight has ", input_norm.size(),
             " values, expected ", s.hidden);
  AQLM_CHECK(int64_t(post_attention_norm.size()) == s.hidden, "block: post_attention_layernorm weight has ",
             post_attention_norm.size(), " values, expected ", s.hidden);
}

template <typename T>
void BlockGradients<T>::allocate(const BlockShape& s, const std::array<bool, kBlockLinearCount>& want_linear) {
  for (int l = 0; l < kBlockLinearCount; ++l)
    linear[size_t(l)].assign(
        want_linear[size_t(l)] ? size_t(s.out_features(BlockLinear(l)) * s.in_features(BlockLinear(l))) : 0, T(0));
  for (int i = 0; i < 3; ++i) bias[size_t(i)].assign(s.attention_bias ? size_t(s.out_features(BlockLinear(i))) : 0, T(0));
  input_norm.assign(size_t(s.hidden), T(0));
  post_attention_norm.assign(size_t(s.hidden), T(0));
}

template <typename T>
void BlockGradients<T>::zero() {
  for (auto& g : linear) std::fill(g.begin(), g.end(), T(0));
  for (auto& g : bias) std::fill(g.begin(), g.end(), T(0));
  std::fill(input_norm.begin(), input_norm.end(), T(0));
  std::fill(post_attention_norm.begin(), post_attention_norm.end(), T(0));
}

// ---------------------------------------------------------------------------- block

namespace {
// y[i] = a[i] + b[i] over n values (y may alias a or b).
template <typename T>
void add(ThreadPool& pool, const T* a, const T* b, int64_t n, T* y) {
  pool.parallel_for(size_t(n), [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) y[i] = a[i] + b[i];
  }, 4096);
}
}  // namespace

template <typename T>
TrainableBlock<T>::TrainableBlock(const BlockShape& shape, ThreadPool* pool)
    : shape_(shape), pool_(pool ? pool : &ThreadPool::global()) {
  shape_.validate();
}

template <typename T>
void TrainableBlock<T>::resize(int64_t windows, int64_t seqlen) {
  AQLM_CHECK(windows > 0 && seqlen > 0, "block: a micro-batch of ", windows, " windows of ", seqlen,
             " tokens is empty");
  if (seqlen != rope_.seqlen) rope_ = block_ops::RopeTable(shape_.rope_inv_freq, seqlen);
  windows_ = windows;
  seqlen_ = seqlen;
  if (windows * seqlen == tokens_) return;
  tokens_ = windows * seqlen;
  const size_t n = size_t(tokens_), H = size_t(shape_.hidden), Q = size_t(shape_.q_dim()),
               KV = size_t(shape_.kv_dim()), F = size_t(shape_.intermediate);
  for (auto* b : {&x_, &n1_, &h_, &n2_, &d_h_, &d_n_}) b->resize(n * H);
  for (auto* b : {&q_, &attn_, &d_attn_, &d_q_}) b->resize(n * Q);
  for (auto* b : {&k_, &v_, &d_k_, &d_v_}) b->resize(n * KV);
  for (auto* b : {&gate_, &up_, &act_, &d_up_}) b->resize(n * F);
  for (auto* b : {&inv_rms1_, &inv_rms2_}) b->resize(n);
  lse_.resize(n * size_t(shape_.num_heads));
}

template <typename T>
void TrainableBlock<T>::forward(const BlockWeights<T>& w, const T* x, int64_t windows, int64_t seqlen, T* y) {
  using namespace block_ops;
  w.validate(shape_);
  resize(windows, seqlen);
  ThreadPool& pool = *pool_;
  const BlockShape& s = shape_;
  const int64_t n = tokens_, H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.intermediate;
  const auto bias = [&](int i) { return s.attention_bias ? w.bias[size_t(i)].data() : nullptr; };

  std::copy(x, x + n * H, x_.begin());
  rmsnorm_forward(pool, x_.data(), n, H, w.input_norm.data(), s.rms_norm_eps, n1_.data(), inv_rms1_.data());
  linear_forward(pool, n1_.data(), n, H, w.linear[kQProj].data(), bias(0), Q, q_.data());
  linear_forward(pool, n1_.data(), n, H, w.linear[kKProj].data(), bias(1), KV, k_.data());
  linear_forward(pool, n1_.data(), n, H, w.linear[kVProj].data(), bias(2), KV, v_.data());
  rope_forward(pool, rope_, q_.data(), n, Q, s.num_heads, s.head_dim);
  rope_forward(pool, rope_, k_.data(), n, KV, s.num_kv_heads, s.head_dim);
  const AttentionShape as{windows_, seqlen_, s.num_heads, s.num_kv_heads, s.head_dim, s.sliding_window};
  attention_forward(pool, as, q_.data(), k_.data(), v_.data(), attn_.data(), lse_.data());
  linear_forward(pool, attn_.data(), n, Q, w.linear[kOProj].data(), static_cast<const T*>(nullptr), H, h_.data());
  add(pool, x_.data(), h_.data(), n * H, h_.data());

  rmsnorm_forward(pool, h_.data(), n, H, w.post_attention_norm.data(), s.rms_norm_eps, n2_.data(), inv_rms2_.data());
  linear_forward(pool, n2_.data(), n, H, w.linear[kGateProj].data(), static_cast<const T*>(nullptr), F, gate_.data());
  linear_forward(pool, n2_.data(), n, H, w.linear[kUpProj].data(), static_cast<const T*>(nullptr), F, up_.data());
  swiglu_forward(pool, gate_.data(), up_.data(), n * F, act_.data());
  linear_forward(pool, act_.data(), n, F, w.linear[kDownProj].data(), static_cast<const T*>(nullptr), H, y);
  add(pool, h_.data(), y, n * H, y);
}

template <typename T>
void TrainableBlock<T>::backward(const BlockWeights<T>& w, const T* dy, BlockGradients<T>& g, T* dx) {
  using namespace block_ops;
  AQLM_CHECK(tokens_ > 0, "block: backward() called before forward()");
  ThreadPool& pool = *pool_;
  const BlockShape& s = shape_;
  const int64_t n = tokens_, H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.intermediate;
  const auto wants = [&](BlockLinear l) { return !g.linear[l].empty(); };

  // MLP: y = h + down(act), act = silu(gate) * up. act_ is recomputed (the forward kept
  // gate and up), then reused for d(act) and, in place, d(gate).
  swiglu_forward(pool, gate_.data(), up_.data(), n * F, act_.data());
  if (wants(kDownProj)) linear_backward_weight(pool, dy, act_.data(), n, H, F, g.linear[kDownProj].data());
  linear_backward_input(pool, dy, n, H, w.linear[kDownProj].data(), F, act_.data(), false);
  swiglu_backward(pool, gate_.data(), up_.data(), act_.data(), n * F, act_.data(), d_up_.data());
  const T* d_gate = act_.data();
  if (wants(kGateProj)) linear_backward_weight(pool, d_gate, n2_.data(), n, F, H, g.linear[kGateProj].data());
  if (wants(kUpProj)) linear_backward_weight(pool, d_up_.data(), n2_.data(), n, F, H, g.linear[kUpProj].data());
  linear_backward_input(pool, d_gate, n, F, w.linear[kGateProj].data(), H, d_n_.data(), false);
  linear_backward_input(pool, d_up_.data(), n, F, w.linear[kUpProj].data(), H, d_n_.data(), true);
  // d_h = dy (residual) + the post-attention norm's backward.
  std::copy(dy, dy + n * H, d_h_.begin());
  rmsnorm_backward(pool, h_.data(), inv_rms2_.data(), n, H, w.post_attention_norm.data(), d_n_.data(), d_h_.data(),
                   true, g.post_attention_norm.empty() ? nullptr : g.post_attention_norm.data());

  // Attention: h = x + o_proj(attn).
  if (wants(kOProj)) linear_backward_weight(pool, d_h_.data(), attn_.data(), n, H, Q, g.linear[kOProj].data());
  linear_backward_input(pool, d_h_.data(), n, H, w.linear[kOProj].data(), Q, d_attn_.data(), false);
  const AttentionShape as{windows_, seqlen_, s.num_heads, s.num_kv_heads, s.head_dim, s.sliding_window};
  attention_backward(pool, as, q_.data(), k_.data(), v_.data(), attn_.data(), lse_.data(), d_attn_.data(),
                     d_q_.data(), d_k_.data(), d_v_.data());
  rope_backward(pool, rope_, d_q_.data(), n, Q, s.num_heads, s.head_dim);
  rope_backward(pool, rope_, d_k_.data(), n, KV, s.num_kv_heads, s.head_dim);
  const std::array<const T*, 3> d_proj{d_q_.data(), d_k_.data(), d_v_.data()};
  const std::array<int64_t, 3> proj_out{Q, KV, KV};
  for (int i = 0; i < 3; ++i) {
    const BlockLinear l = BlockLinear(i);
    if (wants(l)) linear_backward_weight(pool, d_proj[size_t(i)], n1_.data(), n, proj_out[size_t(i)], H, g.linear[l].data());
    if (s.attention_bias && !g.bias[size_t(i)].empty())
      bias_backward(pool, d_proj[size_t(i)], n, proj_out[size_t(i)], g.bias[size_t(i)].data());
    linear_backward_input(pool, d_proj[size_t(i)], n, proj_out[size_t(i)], w.linear[l].data(), H, d_n_.data(), i > 0);
  }
  // dx = d_h (residual) + the input norm's backward.
  rmsnorm_backward(pool, x_.data(), inv_rms1_.data(), n, H, w.input_norm.data(), d_n_.data(), d_h_.data(), true,
                   g.input_norm.empty() ? nullptr : g.input_norm.data());
  if (dx) std::copy(d_h_.begin(), d_h_.end(), dx);
}

template <typename T>
const T* TrainableBlock<T>::linear_input(BlockLinear l) const {
  AQLM_CHECK(tokens_ > 0, "block: linear_input() called before forward()");
  switch (l) {
    case kQProj:
    case kKProj:
    case kVProj: return n1_.data();
    case kOProj: return attn_.data();
    case kGateProj:
    case kUpProj: return n2_.data();
    case kDownProj: return act_.data();
    default: break;
  }
  fail("block: no linear layer number ", int(l));
}

template struct BlockWeights<float>;
template struct BlockWeights<double>;
template struct BlockGradients<float>;
template struct BlockGradients<double>;
template class TrainableBlock<float>;
template class TrainableBlock<double>;

}  // namespace aqlm
