#pragma once
// Kernels of the GPU AQLM layer quantizer (core/quant/aqlm_quantizer_cuda.cpp drives them): the
// same steps as core/quant/aqlm_quantizer.cpp, kmeans.cpp, beam_search.cpp and adam.cpp, one
// launch per step over every output row (or codeword) at once. Layout and names follow
// QuantizedLayer: codes uint16 [out, J, M] (J = in / g), codebooks [M, K, g] (K = 2^B), scales [out].
//
// All pointers are device pointers; calls are asynchronous on stream 0 and check their launch.
// Sums that decide results run in a fixed order (no float atomics), so every result is the same
// from run to run on a given GPU.
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define AQLM_HOST_DEVICE __host__ __device__
#else
#define AQLM_HOST_DEVICE
#endif

namespace aqlm::cuda {

struct LayerDims {
  int64_t out = 0, in = 0;
  int g = 8, M = 1;
  int64_t K = 256;
  AQLM_HOST_DEVICE int64_t J() const { return in / g; }
};

// ---- initialisation and reconstruction

// scales[o] = float(sqrt(sum_i W[o,i]^2) + eps) (sum in double), residual = W / scales.
void row_norm_scales(const float* w, int64_t out, int64_t in, double eps, float* scales, float* residual);
// error[o, i] = W[o, i] - scales[o] * sum_m codebooks[m][codes[o, j, m]][i - j g].
void dequantize_error(const LayerDims& d, const float* w, const uint16_t* codes, const float* codebooks,
                      const float* scales, float* error);
// weight[o, i] = scales[o] * sum_m codebooks[m][codes[o, j, m]][i - j g] (QuantizedLayer::dequantize).
void dequantize_layer(const LayerDims& d, const uint16_t* codes, const float* codebooks, const float* scales,
                      float* weight);
// The sum of a[i] b[i] in double over a fixed partition (deterministic), written to *result.
// `partials` holds kDotPartials doubles.
constexpr int kDotPartials = 1024;
void dot_double(const float* a, const float* b, size_t n, double* partials, double* result);
void dot_double(const double* a, const double* b, size_t n, double* partials, double* result);
void float_to_double(const float* src, size_t n, double* dst);
void double_to_float(const double* src, size_t n, float* dst);
// dst[i] = a[i] - b[i] in float, then widened to double (LayerProblem::relative_error's delta).
void difference_to_double(const float* a, const float* b, size_t n, double* dst);

// ---- k-means

// dst[i, :] = src[index[i], :] for i < n (rows of g floats).
void gather_rows(const float* src, const int64_t* index, int64_t n, int g, float* dst);
// norms[c] = sum_d centroids[c, d]^2, an fma chain in d order (the CPU's float loop).
void centroid_norms(const float* centroids, int64_t k, int g, float* norms);
// changed = 1 when a[i] != b[i] for some i (a flag in device memory, set to 0 first).
void any_difference(const uint32_t* a, const uint32_t* b, int64_t n, int* changed);
// Stable sort of (key, value) pairs by key, keys < 2^end_bit (cub radix sort). scratch grows.
class SortScratch {
 public:
  SortScratch() = default;
  ~SortScratch();
  SortScratch(const SortScratch&) = delete;
  SortScratch& operator=(const SortScratch&) = delete;
  void* reserve(size_t bytes);
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};
void sort_pairs(const uint32_t* keys_in, uint32_t* keys_out, const uint32_t* values_in, uint32_t* values_out, int64_t n,
                int end_bit, SortScratch& scratch);
// values[i] = i.
void iota(uint32_t* values, int64_t n);
// offsets[k] = first position of key k in the sorted keys (offsets[keys] = n).
void segment_offsets(const uint32_t* sorted_keys, int64_t n, int64_t keys, int64_t* offsets);
// centroids[c] = mean of data[members[offsets[c]..offsets[c+1])] in double, member order;
// an empty cluster keeps its centroid (kmeans.cpp's update).
void centroid_means(const float* data, const uint32_t* members, const int64_t* offsets, int64_t k, int g,
                    float* centroids);
// codes[q * M + m] = assignment[q]; residual[q, :] -= centroids[assignment[q], :].
void assign_codes(const uint32_t* assignment, const float* centroids, int64_t n, int g, int M, int m, uint16_t* codes,
                  float* residual);

// ---- codebook and scale gradients, Adam

// Keys m * K + codes[p * M + m] with values p for every place p < out * J and codebook m
// (the input of the inverted index: sorted, they list each codeword's places in order).
void code_keys(const uint16_t* codes, int64_t places, int M, int64_t K, uint32_t* keys, uint32_t* values);
// d codebooks[m][k][:] = factor * sum over the places p of codeword (m, k) of scales[o] R[o, j g : j g + g]
// (p = o J + j; places from the inverted index), summed in double in a fixed order.
void codebook_gradient(const LayerDims& d, const uint32_t* places, const int64_t* offsets, const float* scales,
                       const float* r, double factor, float* grad);
// d scales[o] = factor * sum_i (sum_m codeword)[i] R[o, i] (double).
void scale_gradient(const LayerDims& d, const uint16_t* codes, const float* codebooks, const float* r, double factor,
                    float* grad);
// torch's Adam step (adam.cpp): m, v in float, the update in double.
void adam_step(float* value, const float* grad, float* m, float* v, size_t n, double beta1, double beta2,
               double step_size, double v_correction, double eps);

// ---- beam search (beam_search.cpp), in the visiting order of the groups

// dst[r, c] = src[column[r], column[c]] (n x n), and rows_out [rows, n]: rows_src[r, column[c]].
void permute_square(const float* src, const int64_t* column, int64_t n, float* dst);
void permute_columns(const float* src, const int64_t* column, int64_t rows, int64_t n, float* dst);

struct BeamBuffers {
  LayerDims dims;
  int beam = 1;
  uint16_t* codes = nullptr;         // the layer's codes (updated on commit)
  const float* codebooks = nullptr;
  const float* scales = nullptr;
  const double* diagonal = nullptr;  // [J][g][g]: XTX's diagonal blocks, double
  const float* r_permuted = nullptr; // [out, in]: (W - W') XTX, columns in visiting order
  uint16_t* hyp_codes = nullptr;     // [out, beam, M]
  float* hyp_v = nullptr;            // [out, beam, g]
  double* hyp_psi = nullptr;         // [out, beam]
  uint16_t* next_codes = nullptr;
  float* next_v = nullptr;
  double* next_psi = nullptr;
  double* u = nullptr;               // [out, g]
  unsigned char* row_active = nullptr;  // [out]
  float* queries = nullptr;          // [out * beam, g]
  double* query_const = nullptr;     // [out * beam]
  uint32_t* found = nullptr;         // [out * beam * beam]
  float* found_score = nullptr;
  float* bias = nullptr;             // [K]
  float* delta = nullptr;            // [out, g]
  double* row_change = nullptr;      // [out]
};

// Position a of the visiting order is group j: every row's starting hypothesis (its codes) and u.
void beam_start(const BeamBuffers& b, int64_t a, int64_t j);
// bias[c] = w_c^T H w_c for codebook m (H = float(XTX[j, j])).
void beam_bias(const BeamBuffers& b, int m, int64_t j);
// Queries q = u - H p (p: the hypothesis without codebook m) and their constants psi(p).
void beam_queries(const BeamBuffers& b, int m, int64_t j, int hyps);
// Keeps the best next_hyps (parent, word) pairs of each row into next_*, from found[out*hyps, kk].
void beam_select(const BeamBuffers& b, int m, int hyps, int kk, int next_hyps);
// Commits each row's best hypothesis where psi falls (recomputed in double); writes delta and row_change.
void beam_commit(const BeamBuffers& b, int64_t j);
// *total = sum of values[0..n) in a fixed order.
void sum_double(const double* values, int64_t n, double* total);

}  // namespace aqlm::cuda
