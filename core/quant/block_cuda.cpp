// The training-mode block on the GPU (see block_cuda.h): TrainableBlock<float>'s forward and
// backward, step for step, on device arrays.
#ifdef AQLM_HAVE_CUDA

#include "core/quant/block_cuda.h"

#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "kernels/cuda/quant_block_cuda.h"
#include "kernels/cuda/quant_layer_cuda.h"

namespace aqlm {

namespace {
using cuda::DeviceArray;
// Bytes of one attention score buffer (the scores and their gradient each take one): a fixed
// budget, not the free memory, so the head chunks -- and the results -- are the same everywhere.
constexpr size_t kScoreBufferBytes = size_t(2) << 30;
constexpr int64_t kXtxChunkRows = 4096;  // rows converted to float64 per dsyrk

void copy_device(float* dst, const float* src, size_t n) {
  cuda::check(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice), "copying activations on the GPU");
}

void upload_vector(DeviceArray<float>& dst, const std::vector<float>& src, const char* what) {
  dst.resize(src.size(), what);
  if (!src.empty()) dst.upload(src);
}
}  // namespace

void CudaBlockWeights::upload(const BlockShape& shape, const BlockWeights<float>& w) {
  w.validate(shape);
  for (int l = 0; l < kBlockLinearCount; ++l) upload_vector(linear[size_t(l)], w.linear[size_t(l)], "block weights");
  for (int i = 0; i < 3; ++i) upload_vector(bias[size_t(i)], w.bias[size_t(i)], "block biases");
  upload_vector(input_norm, w.input_norm, "block norms");
  upload_vector(post_attention_norm, w.post_attention_norm, "block norms");
}

void CudaBlockGradients::allocate(const BlockShape& s, const std::array<bool, kBlockLinearCount>& want_linear,
                                  bool norms, bool biases) {
  for (int l = 0; l < kBlockLinearCount; ++l)
    linear[size_t(l)].resize(
        want_linear[size_t(l)] ? size_t(s.out_features(BlockLinear(l)) * s.in_features(BlockLinear(l))) : 0,
        "block weight gradients");
  for (int i = 0; i < 3; ++i)
    bias[size_t(i)].resize(biases && s.attention_bias ? size_t(s.out_features(BlockLinear(i))) : 0, "bias gradients");
  input_norm.resize(norms ? size_t(s.hidden) : 0, "norm gradients");
  post_attention_norm.resize(norms ? size_t(s.hidden) : 0, "norm gradients");
  zero();
}

void CudaBlockGradients::zero() {
  for (auto& g : linear) g.zero();
  for (auto& g : bias) g.zero();
  input_norm.zero();
  post_attention_norm.zero();
}

CudaTrainableBlock::CudaTrainableBlock(const BlockShape& shape, cuda::GemmPrecision precision)
    : shape_(shape), precision_(precision), partials_(size_t(cuda::kColumnChunks) * size_t(std::max<int64_t>(shape.hidden, 1)), "column partial sums") {
  shape_.validate();
}

size_t CudaTrainableBlock::activation_bytes(const BlockShape& s, int64_t windows, int64_t seqlen) {
  const size_t tokens = size_t(windows * seqlen);
  const size_t heads = size_t(s.num_heads), n = size_t(seqlen);
  const size_t chunk = std::max<size_t>(1, std::min(heads, kScoreBufferBytes / (n * n * 4)));
  return 4 * (tokens * s.activation_floats_per_token() + 2 * chunk * n * n + heads * n * (2 * size_t(s.head_dim) + 1)) +
         8 * n * size_t(s.head_dim);
}

int64_t CudaTrainableBlock::heads_per_pass() const {
  const int64_t group = shape_.num_heads / shape_.num_kv_heads;
  const int64_t fit = std::max<int64_t>(1, int64_t(kScoreBufferBytes / (size_t(seqlen_) * size_t(seqlen_) * 4)));
  if (fit >= shape_.num_heads) return shape_.num_heads;
  return std::max<int64_t>(group, fit / group * group);  // whole groups, so dk / dv sums stay per pass
}

void CudaTrainableBlock::resize(int64_t windows, int64_t seqlen) {
  AQLM_CHECK(windows > 0 && seqlen > 0, "block: a micro-batch of ", windows, " windows of ", seqlen, " tokens is empty");
  const BlockShape& s = shape_;
  if (seqlen != seqlen_) {
    const int64_t half = s.head_dim / 2;
    std::vector<double> c(size_t(seqlen * half)), sn(c.size());
    for (int64_t t = 0; t < seqlen; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = double(t) * s.rope_inv_freq[size_t(i)];
        c[size_t(t * half + i)] = std::cos(angle);
        sn[size_t(t * half + i)] = std::sin(angle);
      }
    rope_cos_.resize(c.size(), "RoPE tables");
    rope_sin_.resize(sn.size(), "RoPE tables");
    rope_cos_.upload(c);
    rope_sin_.upload(sn);
    seqlen_ = seqlen;
    const int64_t chunk = heads_per_pass();
    scores_.resize(size_t(chunk * seqlen * seqlen), "attention scores");
    d_scores_.resize(scores_.size(), "attention score gradients");
    row_dot_.resize(size_t(s.num_heads * seqlen), "attention row terms");
    dk_heads_.resize(size_t(s.num_heads * seqlen * s.head_dim), "attention key gradients");
    dv_heads_.resize(dk_heads_.size(), "attention value gradients");
  }
  windows_ = windows;
  if (windows * seqlen == tokens_) return;
  tokens_ = windows * seqlen;
  const size_t n = size_t(tokens_), H = size_t(s.hidden), Q = size_t(s.q_dim()), KV = size_t(s.kv_dim()),
               F = size_t(s.intermediate);
  for (auto* b : {&x_, &n1_, &h_, &n2_, &d_h_, &d_n_}) b->resize(n * H, "block activations");
  for (auto* b : {&q_, &attn_, &d_attn_, &d_q_}) b->resize(n * Q, "block activations");
  for (auto* b : {&k_, &v_, &d_k_, &d_v_}) b->resize(n * KV, "block activations");
  for (auto* b : {&gate_, &up_, &act_, &d_up_}) b->resize(n * F, "block activations");
  for (auto* b : {&inv_rms1_, &inv_rms2_}) b->resize(n, "block activations");
  lse_.resize(n * size_t(s.num_heads), "attention log-sum-exps");
}

void CudaTrainableBlock::linear(const float* x, int64_t in, const DeviceArray<float>& w,
                                const DeviceArray<float>* bias, int64_t out, float* y) {
  blas_.gemm(false, true, tokens_, out, in, 1.0f, x, in, w.data(), in, 0.0f, y, out, precision_);
  if (bias && bias->size()) cuda::add_row_bias(y, tokens_, out, bias->data());
}

void CudaTrainableBlock::forward(const CudaBlockWeights& w, const float* x, int64_t windows, int64_t seqlen, float* y) {
  resize(windows, seqlen);
  const BlockShape& s = shape_;
  const int64_t n = tokens_, H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.intermediate;
  const auto bias = [&](int i) { return s.attention_bias ? &w.bias[size_t(i)] : nullptr; };
  copy_device(x_.data(), x, size_t(n * H));
  cuda::rmsnorm_forward(x_.data(), n, H, w.input_norm.data(), s.rms_norm_eps, n1_.data(), inv_rms1_.data());
  linear(n1_.data(), H, w.linear[kQProj], bias(0), Q, q_.data());
  linear(n1_.data(), H, w.linear[kKProj], bias(1), KV, k_.data());
  linear(n1_.data(), H, w.linear[kVProj], bias(2), KV, v_.data());
  cuda::rope_rotate(q_.data(), n, Q, s.num_heads, s.head_dim, rope_cos_.data(), rope_sin_.data(), seqlen_, 1.0);
  cuda::rope_rotate(k_.data(), n, KV, s.num_kv_heads, s.head_dim, rope_cos_.data(), rope_sin_.data(), seqlen_, 1.0);
  attention_forward();
  linear(attn_.data(), Q, w.linear[kOProj], nullptr, H, h_.data());
  cuda::add(x_.data(), h_.data(), n * H, h_.data());
  cuda::rmsnorm_forward(h_.data(), n, H, w.post_attention_norm.data(), s.rms_norm_eps, n2_.data(), inv_rms2_.data());
  linear(n2_.data(), H, w.linear[kGateProj], nullptr, F, gate_.data());
  linear(n2_.data(), H, w.linear[kUpProj], nullptr, F, up_.data());
  cuda::swiglu_forward(gate_.data(), up_.data(), n * F, act_.data());
  linear(act_.data(), F, w.linear[kDownProj], nullptr, H, y);
  cuda::add(h_.data(), y, n * H, y);
}

// Scores of query heads [h0, h0 + hc) of window w into scores_ (scaled by 1/sqrt(head_dim)).
// Query head h reads KV head h / group; with one head per group a single batched product covers
// the chunk, else one product per KV head (its group's query heads share the keys).
void CudaTrainableBlock::attention_forward() {
  const BlockShape& s = shape_;
  const int64_t Q = s.q_dim(), KV = s.kv_dim(), hd = s.head_dim, group = s.num_heads / s.num_kv_heads, L = seqlen_;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t chunk = heads_per_pass();
  for (int64_t w = 0; w < windows_; ++w) {
    const float *q = q_.data() + w * L * Q, *k = k_.data() + w * L * KV, *v = v_.data() + w * L * KV;
    float* out = attn_.data() + w * L * Q;
    for (int64_t h0 = 0; h0 < s.num_heads; h0 += chunk) {
      const int64_t hc = std::min(chunk, s.num_heads - h0);
      for (int64_t g0 = h0; g0 < h0 + hc; g0 += group) {  // one KV head's query heads (all of the chunk when group == 1)
        const int64_t batch = group == 1 ? hc : group, kvh = g0 / group;
        blas_.gemm_batched(false, true, L, L, hd, scale, q + g0 * hd, Q, hd, k + kvh * hd, KV, group == 1 ? hd : 0,
                           0.0f, scores_.data() + (g0 - h0) * L * L, L, L * L, batch, precision_);
        if (group == 1) break;
      }
      cuda::softmax_rows(scores_.data(), hc, L, s.sliding_window, lse_.data() + (w * s.num_heads + h0) * L);
      for (int64_t g0 = h0; g0 < h0 + hc; g0 += group) {
        const int64_t batch = group == 1 ? hc : group, kvh = g0 / group;
        blas_.gemm_batched(false, false, L, hd, L, 1.0f, scores_.data() + (g0 - h0) * L * L, L, L * L, v + kvh * hd, KV,
                           group == 1 ? hd : 0, 0.0f, out + g0 * hd, Q, hd, batch, precision_);
        if (group == 1) break;
      }
    }
  }
}

void CudaTrainableBlock::attention_backward() {
  const BlockShape& s = shape_;
  const int64_t Q = s.q_dim(), KV = s.kv_dim(), hd = s.head_dim, group = s.num_heads / s.num_kv_heads, L = seqlen_;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t chunk = heads_per_pass();
  for (int64_t w = 0; w < windows_; ++w) {
    const float *q = q_.data() + w * L * Q, *k = k_.data() + w * L * KV, *v = v_.data() + w * L * KV;
    const float *o = attn_.data() + w * L * Q, *d_o = d_attn_.data() + w * L * Q;
    float* dq = d_q_.data() + w * L * Q;
    const float* lse = lse_.data() + w * s.num_heads * L;
    cuda::attention_row_dot(o, d_o, s.num_heads, L, hd, Q, row_dot_.data());
    for (int64_t h0 = 0; h0 < s.num_heads; h0 += chunk) {
      const int64_t hc = std::min(chunk, s.num_heads - h0);
      for (int64_t g0 = h0; g0 < h0 + hc; g0 += group) {
        const int64_t batch = group == 1 ? hc : group, kvh = g0 / group, kv_stride = group == 1 ? hd : 0;
        float* S = scores_.data() + (g0 - h0) * L * L;
        float* dP = d_scores_.data() + (g0 - h0) * L * L;
        blas_.gemm_batched(false, true, L, L, hd, scale, q + g0 * hd, Q, hd, k + kvh * hd, KV, kv_stride, 0.0f, S, L,
                           L * L, batch, precision_);
        blas_.gemm_batched(false, true, L, L, hd, 1.0f, d_o + g0 * hd, Q, hd, v + kvh * hd, KV, kv_stride, 0.0f, dP, L,
                           L * L, batch, precision_);
        if (group == 1) break;
      }
      cuda::softmax_backward_rows(scores_.data(), d_scores_.data(), lse + h0 * L, row_dot_.data() + h0 * L, hc, L,
                                  s.sliding_window);
      for (int64_t g0 = h0; g0 < h0 + hc; g0 += group) {
        const int64_t batch = group == 1 ? hc : group, kvh = g0 / group, kv_stride = group == 1 ? hd : 0;
        const float* P = scores_.data() + (g0 - h0) * L * L;
        const float* dS = d_scores_.data() + (g0 - h0) * L * L;
        // dV_h = P^T dO_h, dQ_h = scale dS K, dK_h = scale dS^T Q_h (per query head, summed per group below)
        blas_.gemm_batched(true, false, L, hd, L, 1.0f, P, L, L * L, d_o + g0 * hd, Q, hd, 0.0f,
                           dv_heads_.data() + g0 * L * hd, hd, L * hd, batch, precision_);
        blas_.gemm_batched(false, false, L, hd, L, scale, dS, L, L * L, k + kvh * hd, KV, kv_stride, 0.0f, dq + g0 * hd,
                           Q, hd, batch, precision_);
        blas_.gemm_batched(true, false, L, hd, L, scale, dS, L, L * L, q + g0 * hd, Q, hd, 0.0f,
                           dk_heads_.data() + g0 * L * hd, hd, L * hd, batch, precision_);
        if (group == 1) break;
      }
    }
    cuda::sum_head_groups(dk_heads_.data(), s.num_heads, s.num_kv_heads, L, hd, d_k_.data() + w * L * KV, KV);
    cuda::sum_head_groups(dv_heads_.data(), s.num_heads, s.num_kv_heads, L, hd, d_v_.data() + w * L * KV, KV);
  }
}

void CudaTrainableBlock::backward(const CudaBlockWeights& w, const float* dy, CudaBlockGradients& g, float* dx) {
  AQLM_CHECK(tokens_ > 0, "block: backward() called before forward()");
  const BlockShape& s = shape_;
  const int64_t n = tokens_, H = s.hidden, Q = s.q_dim(), KV = s.kv_dim(), F = s.intermediate;
  const auto weight_grad = [&](BlockLinear l, const float* d_out, const float* in_act, int64_t out, int64_t in) {
    if (g.linear[l].size()) blas_.gemm(true, false, out, in, n, 1.0f, d_out, out, in_act, in, 1.0f, g.linear[l].data(), in, precision_);
  };
  const auto input_grad = [&](const float* d_out, int64_t out, BlockLinear l, int64_t in, float* d_in, bool accumulate) {
    blas_.gemm(false, false, n, in, out, 1.0f, d_out, out, w.linear[l].data(), in, accumulate ? 1.0f : 0.0f, d_in, in,
               precision_);
  };
  // MLP: y = h + down(act), act = silu(gate) * up; act_ recomputed, then reused for d(act) and d(gate).
  cuda::swiglu_forward(gate_.data(), up_.data(), n * F, act_.data());
  weight_grad(kDownProj, dy, act_.data(), H, F);
  input_grad(dy, H, kDownProj, F, act_.data(), false);
  cuda::swiglu_backward(gate_.data(), up_.data(), act_.data(), n * F, act_.data(), d_up_.data());
  const float* d_gate = act_.data();
  weight_grad(kGateProj, d_gate, n2_.data(), F, H);
  weight_grad(kUpProj, d_up_.data(), n2_.data(), F, H);
  input_grad(d_gate, F, kGateProj, H, d_n_.data(), false);
  input_grad(d_up_.data(), F, kUpProj, H, d_n_.data(), true);
  copy_device(d_h_.data(), dy, size_t(n * H));
  cuda::rmsnorm_backward_input(h_.data(), inv_rms2_.data(), n, H, w.post_attention_norm.data(), d_n_.data(),
                               d_h_.data(), true);
  if (g.post_attention_norm.size())
    cuda::column_sums(d_n_.data(), h_.data(), inv_rms2_.data(), n, H, H, partials_.data(), g.post_attention_norm.data());

  // Attention: h = x + o_proj(attn).
  weight_grad(kOProj, d_h_.data(), attn_.data(), H, Q);
  input_grad(d_h_.data(), H, kOProj, Q, d_attn_.data(), false);
  attention_backward();
  cuda::rope_rotate(d_q_.data(), n, Q, s.num_heads, s.head_dim, rope_cos_.data(), rope_sin_.data(), seqlen_, -1.0);
  cuda::rope_rotate(d_k_.data(), n, KV, s.num_kv_heads, s.head_dim, rope_cos_.data(), rope_sin_.data(), seqlen_, -1.0);
  const std::array<const float*, 3> d_proj{d_q_.data(), d_k_.data(), d_v_.data()};
  const std::array<int64_t, 3> proj_out{Q, KV, KV};
  for (int i = 0; i < 3; ++i) {
    const BlockLinear l = BlockLinear(i);
    weight_grad(l, d_proj[size_t(i)], n1_.data(), proj_out[size_t(i)], H);
    if (s.attention_bias && g.bias[size_t(i)].size()) {
      // bias_backward: column sums of d_proj (partials sized for hidden columns; q/k/v have at most q_dim)
      if (partials_.size() < size_t(cuda::kColumnChunks * proj_out[size_t(i)]))
        partials_.resize(size_t(cuda::kColumnChunks * std::max(Q, H)), "column partial sums");
      cuda::column_sums(d_proj[size_t(i)], nullptr, nullptr, n, proj_out[size_t(i)], proj_out[size_t(i)], partials_.data(),
                        g.bias[size_t(i)].data());
    }
    input_grad(d_proj[size_t(i)], proj_out[size_t(i)], l, H, d_n_.data(), i > 0);
  }
  cuda::rmsnorm_backward_input(x_.data(), inv_rms1_.data(), n, H, w.input_norm.data(), d_n_.data(), d_h_.data(), true);
  if (g.input_norm.size())
    cuda::column_sums(d_n_.data(), x_.data(), inv_rms1_.data(), n, H, H, partials_.data(), g.input_norm.data());
  if (dx) copy_device(dx, d_h_.data(), size_t(n * H));
}

const float* CudaTrainableBlock::linear_input(BlockLinear l) const {
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

CudaXtx::CudaXtx(int64_t n) : n_(n), sum_(size_t(n * n), "XTX (float64 sum)") {
  AQLM_CHECK(n > 0, "XTX: ", n, " features");
  sum_.zero();
}

void CudaXtx::add(cuda::QuantBlas& blas, const float* x, int64_t rows) {
  const int64_t chunk = std::min(rows, kXtxChunkRows);
  if (chunk <= 0) return;
  chunk_.resize(size_t(chunk * n_), "XTX input (float64)");
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    cuda::float_to_double(x + r0 * n_, size_t(m * n_), chunk_.data());
    blas.syrk_lower(chunk_.data(), m, n_, n_, sum_.data());
  }
  rows_ += rows;
}

}  // namespace aqlm

#endif  // AQLM_HAVE_CUDA
