#pragma once
// The AQLM dequantization inside block fine-tuning and its backward pass (codes frozen,
// codebooks and scales trainable):
//   W[o, j*g + c] = scale[o] * sum_m codebooks[m][codes[o, j, m]][c]
// codes uint16 [out, in/g, M] (codebook index fastest), codebooks [M, 2^B, g], scales [out],
// as in QuantizedLayer (core/quant/quantized_layer.h). Templated on the scalar (float for
// training, double for gradient checks); the tensors are viewed, not owned.
#include <cstdint>

#include "core/quant/quantized_layer.h"

namespace aqlm {

class ThreadPool;

template <typename T>
struct AqlmTensors {
  int64_t out_features = 0, in_features = 0;
  int num_codebooks = 0;  // M
  int nbits = 0;          // B: each codebook has 2^B codewords
  int group_size = 0;     // g
  const uint16_t* codes = nullptr;  // [out, in/g, M], every code < 2^B
  const T* codebooks = nullptr;     // [M, 2^B, g]
  const T* scales = nullptr;        // [out]

  int64_t codebook_size() const { return int64_t(1) << nbits; }
  int64_t groups_per_row() const { return in_features / group_size; }
  int64_t codebook_values() const { return num_codebooks * codebook_size() * group_size; }
};

// A view of `q`'s tensors (valid while q lives and is not resized).
inline AqlmTensors<float> aqlm_view(const QuantizedLayer& q) {
  AqlmTensors<float> t;
  t.out_features = q.out_features;
  t.in_features = q.in_features;
  t.num_codebooks = q.config.num_codebooks;
  t.nbits = q.config.nbits;
  t.group_size = q.config.group_size;
  t.codes = q.codes.data();
  t.codebooks = q.codebooks.data();
  t.scales = q.scales.data();
  return t;
}

// W [out, in] from codes, codebooks and scales.
template <typename T>
void aqlm_dequantize(ThreadPool& pool, const AqlmTensors<T>& p, T* weight);

// The chain rule through the dequantization, from dW [out, in]:
//   d_codebooks[m][k][c] += sum over (o, j) with codes[o, j, m] = k of scale[o] * dW[o, j*g + c]
//   d_scales[o]          += sum_i dW[o, i] * W[o, i] / scale[o]   (computed without dividing)
// Sums run in double over a fixed assignment of rows to chunks, so the result does not
// depend on the thread count.
template <typename T>
void aqlm_backward(ThreadPool& pool, const AqlmTensors<T>& p, const T* d_weight, T* d_codebooks, T* d_scales);

}  // namespace aqlm
