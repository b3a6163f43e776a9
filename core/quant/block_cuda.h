#pragma once
// The training-mode decoder block (block_trainable.h) on one CUDA GPU: forward keeping the
// activations backward needs, backward into device gradients, each linear's input for XTX, and
// XTX accumulated on the device. Weights, activations and gradients live in device memory.
// Products go through cuBLAS in fp32 or TF32 (GemmPrecision); RMSNorm, RoPE, softmax and
// SwiGLU follow block_ops.cpp element for element (reductions in double). Attention keeps one
// window's [heads, seqlen, seqlen] score matrix (in head chunks when memory is short), recomputed
// in backward from the stored log-sum-exps, as the CPU block does.
//
// Only with AQLM_HAVE_CUDA (callers are the *_cuda.cpp files).
#ifdef AQLM_HAVE_CUDA

#include <array>
#include <cstdint>
#include <vector>

#include "core/quant/block_trainable.h"
#include "kernels/cuda/quant_cuda_common.h"

namespace aqlm {

struct CudaBlockWeights {
  std::array<cuda::DeviceArray<float>, kBlockLinearCount> linear;  // [out, in]
  std::array<cuda::DeviceArray<float>, 3> bias;                    // q, k, v (attention_bias)
  cuda::DeviceArray<float> input_norm, post_attention_norm;
  // Every tensor of `w` (validated against the shape).
  void upload(const BlockShape& shape, const BlockWeights<float>& w);
};

// Gradients, accumulated (+=) by backward(); an empty array is not computed (frozen).
struct CudaBlockGradients {
  std::array<cuda::DeviceArray<float>, kBlockLinearCount> linear;
  std::array<cuda::DeviceArray<float>, 3> bias;
  cuda::DeviceArray<float> input_norm, post_attention_norm;
  void allocate(const BlockShape& shape, const std::array<bool, kBlockLinearCount>& want_linear, bool norms,
                bool biases);
  void zero();
};

class CudaTrainableBlock {
 public:
  CudaTrainableBlock(const BlockShape& shape, cuda::GemmPrecision precision);
  const BlockShape& shape() const { return shape_; }
  cuda::QuantBlas& blas() { return blas_; }

  // y = block(x), x and y device arrays [windows, seqlen, hidden] (y may not alias x).
  void forward(const CudaBlockWeights& w, const float* x, int64_t windows, int64_t seqlen, float* y);
  // Back-propagates dy through the last forward (same weights); dx may be null.
  void backward(const CudaBlockWeights& w, const float* dy, CudaBlockGradients& g, float* dx);
  // The input of linear l after forward(), [tokens(), in_features(l)] on the device.
  const float* linear_input(BlockLinear l) const;
  int64_t tokens() const { return tokens_; }

  // Device bytes forward + backward hold for a micro-batch (activations, scratch, one window's
  // attention scores), for memory planning.
  static size_t activation_bytes(const BlockShape& shape, int64_t windows, int64_t seqlen);

 private:
  void resize(int64_t windows, int64_t seqlen);
  void linear(const float* x, int64_t in, const cuda::DeviceArray<float>& w, const cuda::DeviceArray<float>* bias,
              int64_t out, float* y);
  void attention_forward();
  void attention_backward();
  int64_t heads_per_pass() const;

  BlockShape shape_;
  cuda::GemmPrecision precision_;
  cuda::QuantBlas blas_;
  int64_t windows_ = 0, seqlen_ = 0, tokens_ = 0;
  cuda::DeviceArray<double> rope_cos_, rope_sin_, partials_;
  cuda::DeviceArray<float> x_, n1_, inv_rms1_, q_, k_, v_, attn_, lse_, h_, n2_, inv_rms2_, gate_, up_;
  cuda::DeviceArray<float> act_, d_h_, d_n_, d_up_, d_attn_, d_q_, d_k_, d_v_;
  cuda::DeviceArray<float> scores_, d_scores_, row_dot_, dk_heads_, dv_heads_;
};

// sum += x^T x over rows of x (device, [rows, n], float), in double on the device (cuBLAS dsyrk on
// float64 copies of row chunks: the products of float values are exact in double, so this is
// XtxAccumulator's arithmetic).
class CudaXtx {
 public:
  explicit CudaXtx(int64_t n);
  void add(cuda::QuantBlas& blas, const float* x, int64_t rows);
  int64_t rows() const { return rows_; }
  // The row-major sum, lower triangle (j <= i) filled.
  std::vector<double> sum() const { return sum_.to_host(); }

 private:
  int64_t n_, rows_ = 0;
  cuda::DeviceArray<double> sum_, chunk_;
};

}  // namespace aqlm

#endif  // AQLM_HAVE_CUDA
