// Kernels of the GPU AQLM layer quantizer (see quant_layer_cuda.h). Each mirrors a loop of the
// CPU quantizer with the same arithmetic per element; only the order of long sums differs where
// the CPU's order is a thread-pool chunking (and even then the sums run in double).
#include <cub/cub.cuh>
#include <cuda_runtime.h>

#include <algorithm>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/quant_layer_cuda.h"
#include "kernels/cuda/quant_kernel_common.cuh"

namespace aqlm::cuda {

namespace {

using namespace quant_kernels;

template <typename F>
void dispatch_g(int g, F&& f) {
  switch (g) {
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 16: f(std::integral_constant<int, 16>{}); break;
    default: fail("GPU AQLM quantizer: group size ", g, " (supported: 4, 8, 16)");
  }
}

// ---------------------------------------------------------------------------- reconstruction

__global__ void row_norm_scales_kernel(const float* __restrict__ w, int64_t in, double eps, float* __restrict__ scales,
                                       float* __restrict__ residual) {
  __shared__ double shared[kBlock];
  __shared__ float scale;
  const int64_t o = blockIdx.x;
  const float* row = w + o * in;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < in; i += blockDim.x) sum += double(row[i]) * double(row[i]);
  const double norm = block_sum(sum, shared);
  if (threadIdx.x == 0) {
    scale = float(sqrt(norm) + eps);
    scales[o] = scale;
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < in; i += blockDim.x) residual[o * in + i] = row[i] / scale;
}

template <int G, bool kError>
__global__ void dequantize_kernel(LayerDims d, const float* __restrict__ w, const uint16_t* __restrict__ codes,
                                  const float* __restrict__ codebooks, const float* __restrict__ scales,
                                  float* __restrict__ out) {
  const int64_t J = d.J(), place = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (place >= d.out * J) return;
  const int64_t o = place / J;
  float sum[G];
#pragma unroll
  for (int c = 0; c < G; ++c) sum[c] = 0.0f;
  for (int m = 0; m < d.M; ++m) {
    const float* word = codebooks + (int64_t(m) * d.K + codes[place * d.M + m]) * G;
#pragma unroll
    for (int c = 0; c < G; ++c) sum[c] += word[c];
  }
  const float s = scales[o];
  float* dst = out + place * G;  // row o, group j: o * in + j * g == place * g
#pragma unroll
  for (int c = 0; c < G; ++c) dst[c] = kError ? w[place * G + c] - s * sum[c] : s * sum[c];
}

template <typename T>
__global__ void dot_partials_kernel(const T* __restrict__ a, const T* __restrict__ b, size_t n,
                                    double* __restrict__ partials) {
  __shared__ double shared[kBlock];
  double sum = 0;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    sum += double(a[i]) * double(b[i]);
  const double total = block_sum(sum, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sum_kernel(const double* __restrict__ values, int64_t n, double* __restrict__ total) {
  __shared__ double shared[1024];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) sum += values[i];
  const double t = block_sum(sum, shared);
  if (threadIdx.x == 0) *total = t;
}

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, size_t n, D* __restrict__ dst) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = D(src[i]);
}

__global__ void difference_kernel(const float* __restrict__ a, const float* __restrict__ b, size_t n,
                                  double* __restrict__ dst) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = double(a[i] - b[i]);
}

unsigned grid_stride_blocks(size_t n) { return unsigned(std::min<size_t>((n + kBlock - 1) / kBlock, 8192)); }

// ---------------------------------------------------------------------------- k-means

__global__ void gather_rows_kernel(const float* __restrict__ src, const int64_t* __restrict__ index, int64_t n, int g,
                                   float* __restrict__ dst) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * g) return;
  dst[i] = src[index[i / g] * g + i % g];
}

__global__ void centroid_norms_kernel(const float* __restrict__ c, int64_t k, int g, float* __restrict__ norms) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= k) return;
  float s = 0;
  for (int d = 0; d < g; ++d) s = fmaf(c[i * g + d], c[i * g + d], s);
  norms[i] = s;
}

__global__ void any_difference_kernel(const uint32_t* __restrict__ a, const uint32_t* __restrict__ b, int64_t n,
                                      int* changed) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n && a[i] != b[i]) *changed = 1;
}

__global__ void iota_kernel(uint32_t* values, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) values[i] = uint32_t(i);
}

__global__ void segment_offsets_kernel(const uint32_t* __restrict__ keys, int64_t n, int64_t count,
                                       int64_t* __restrict__ offsets) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k > count) return;
  if (k == count) {
    offsets[k] = n;
    return;
  }
  int64_t lo = 0, hi = n;  // first position with key >= k
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (keys[mid] < uint32_t(k))
      lo = mid + 1;
    else
      hi = mid;
  }
  offsets[k] = lo;
}

// One thread per (centroid, component): the members' values added in member order, in double.
__global__ void centroid_means_kernel(const float* __restrict__ data, const uint32_t* __restrict__ members,
                                      const int64_t* __restrict__ offsets, int64_t k, int g,
                                      float* __restrict__ centroids) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= k * g) return;
  const int64_t c = i / g;
  const int d = int(i % g);
  const int64_t b = offsets[c], e = offsets[c + 1];
  if (b == e) return;  // empty: keeps its centroid
  double sum = 0;
  int64_t m = b;
  for (; m + 8 <= e; m += 8) {  // eight loads in flight, then the adds in order
    float v[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) v[t] = data[int64_t(members[m + t]) * g + d];
#pragma unroll
    for (int t = 0; t < 8; ++t) sum += double(v[t]);
  }
  for (; m < e; ++m) sum += double(data[int64_t(members[m]) * g + d]);
  centroids[i] = float(sum / double(e - b));
}

__global__ void assign_codes_kernel(const uint32_t* __restrict__ assignment, const float* __restrict__ centroids,
                                    int64_t n, int g, int M, int m, uint16_t* __restrict__ codes,
                                    float* __restrict__ residual) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= n) return;
  const uint32_t k = assignment[q];
  codes[q * M + m] = uint16_t(k);
  for (int d = 0; d < g; ++d) residual[q * g + d] -= centroids[int64_t(k) * g + d];
}

// ---------------------------------------------------------------------------- gradients, Adam

__global__ void code_keys_kernel(const uint16_t* __restrict__ codes, int64_t places, int M, int64_t K,
                                 uint32_t* __restrict__ keys, uint32_t* __restrict__ values) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= places * M) return;
  const int64_t m = i / places, p = i % places;
  keys[i] = uint32_t(m * K + codes[p * M + m]);
  values[i] = uint32_t(p);
}

// One warp per codeword; lane l takes the codeword's places l, l + 32, ... and the warp adds the
// lanes' double sums with a fixed butterfly.
template <int G>
__global__ void codebook_gradient_kernel(LayerDims d, const uint32_t* __restrict__ places,
                                         const int64_t* __restrict__ offsets, const float* __restrict__ scales,
                                         const float* __restrict__ r, double factor, float* __restrict__ grad) {
  const int64_t word = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (word >= int64_t(d.M) * d.K) return;
  const int64_t J = d.J();
  double acc[G];
#pragma unroll
  for (int c = 0; c < G; ++c) acc[c] = 0;
  for (int64_t u = offsets[word] + lane; u < offsets[word + 1]; u += 32) {
    const int64_t p = places[u], o = p / J;
    const double s = double(scales[o]);
    const float* row = r + o * d.in + (p - o * J) * G;
#pragma unroll
    for (int c = 0; c < G; ++c) acc[c] += s * double(row[c]);
  }
#pragma unroll
  for (int c = 0; c < G; ++c) {
    const double total = warp_sum(acc[c]);
    if (lane == 0) grad[word * G + c] = float(factor * total);
  }
}

// One warp per row.
__global__ void scale_gradient_kernel(LayerDims d, const uint16_t* __restrict__ codes,
                                      const float* __restrict__ codebooks, const float* __restrict__ r, double factor,
                                      float* __restrict__ grad) {
  const int64_t o = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (o >= d.out) return;
  const int64_t J = d.J();
  double acc = 0;
  for (int64_t i = lane; i < d.in; i += 32) {
    const int64_t j = i / d.g;
    const int c = int(i % d.g);
    float sum = 0;
    for (int m = 0; m < d.M; ++m) sum += codebooks[(int64_t(m) * d.K + codes[(o * J + j) * d.M + m]) * d.g + c];
    acc += double(sum) * double(r[o * d.in + i]);
  }
  const double total = warp_sum(acc);
  if (lane == 0) grad[o] = float(factor * total);
}

__global__ void adam_kernel(float* __restrict__ value, const float* __restrict__ grad, float* __restrict__ m_state,
                            float* __restrict__ v_state, size_t n, double b1, double b2, double step_size,
                            double v_correction, double eps) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const double g = grad[i];
  const double m = b1 * m_state[i] + (1.0 - b1) * g;
  const double v = b2 * v_state[i] + (1.0 - b2) * g * g;
  m_state[i] = float(m);
  v_state[i] = float(v);
  value[i] = float(value[i] - step_size * m / (sqrt(v) * v_correction + eps));
}

// ---------------------------------------------------------------------------- beam search

__global__ void permute_square_kernel(const float* __restrict__ src, const int64_t* __restrict__ column, int64_t n,
                                      float* __restrict__ dst) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, r = blockIdx.y;
  if (c >= n) return;
  dst[r * n + c] = src[column[r] * n + column[c]];
}

__global__ void permute_columns_kernel(const float* __restrict__ src, const int64_t* __restrict__ column, int64_t n,
                                       float* __restrict__ dst) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, r = blockIdx.y;
  if (c >= n) return;
  dst[r * n + c] = src[r * n + column[c]];
}

// psi(v) = v^T H v - 2 u^T v in double.
template <int G>
__device__ double psi(const double* h, const double* u, const double* v) {
  double quad = 0, lin = 0;
#pragma unroll
  for (int a = 0; a < G; ++a) {
    double hv = 0;
#pragma unroll
    for (int b = 0; b < G; ++b) hv += h[a * G + b] * v[b];
    quad += v[a] * hv;
    lin += u[a] * v[a];
  }
  return quad - 2.0 * lin;
}

template <int G>
__device__ void load_block(const double* diagonal, int64_t j, double* h) {
  for (int i = threadIdx.x; i < G * G; i += blockDim.x) h[i] = diagonal[j * G * G + i];
  __syncthreads();
}

template <int G>
__global__ void beam_start_kernel(BeamBuffers b, int64_t a, int64_t j) {
  __shared__ double h[G * G];
  load_block<G>(b.diagonal, j, h);
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const LayerDims& d = b.dims;
  if (o >= d.out) return;
  const double s = b.scales[o];
  const uint16_t* codes = b.codes + (o * d.J() + j) * d.M;
  float vf[G];
#pragma unroll
  for (int c = 0; c < G; ++c) vf[c] = 0.0f;
  for (int m = 0; m < d.M; ++m) {
    const float* word = b.codebooks + (int64_t(m) * d.K + codes[m]) * G;
#pragma unroll
    for (int c = 0; c < G; ++c) vf[c] += word[c];
  }
  double v[G], u[G];
#pragma unroll
  for (int c = 0; c < G; ++c) {
    v[c] = vf[c];
    b.hyp_v[o * b.beam * G + c] = vf[c];
  }
  const bool active = isfinite(s) && fabs(s) > 1e-30;
  b.row_active[o] = active;
#pragma unroll
  for (int r = 0; r < G; ++r) {
    double hv = 0;
#pragma unroll
    for (int c = 0; c < G; ++c) hv += h[r * G + c] * v[c];
    u[r] = active ? double(b.r_permuted[o * d.in + a * G + r]) / s + hv : hv;  // inactive rows keep their codes
    b.u[o * G + r] = u[r];
  }
  for (int m = 0; m < d.M; ++m) b.hyp_codes[o * b.beam * d.M + m] = codes[m];
  b.hyp_psi[o * b.beam] = psi<G>(h, u, v);
}

template <int G>
__global__ void beam_bias_kernel(BeamBuffers b, int m, int64_t j) {
  __shared__ float hf[G * G];
  for (int i = threadIdx.x; i < G * G; i += blockDim.x) hf[i] = float(b.diagonal[j * G * G + i]);
  __syncthreads();
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= b.dims.K) return;
  const float* w = b.codebooks + (int64_t(m) * b.dims.K + c) * G;
  float n = 0;
#pragma unroll
  for (int r = 0; r < G; ++r) {
    float hw = 0;
#pragma unroll
    for (int q = 0; q < G; ++q) hw += hf[r * G + q] * w[q];
    n += w[r] * hw;
  }
  b.bias[c] = n;
}

template <int G>
__global__ void beam_queries_kernel(BeamBuffers b, int m, int64_t j, int hyps) {
  __shared__ double h[G * G];
  load_block<G>(b.diagonal, j, h);
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const LayerDims& d = b.dims;
  if (t >= d.out * hyps) return;
  const int64_t o = t / hyps, hyp = t % hyps, hi = o * b.beam + hyp;
  const float* w = b.codebooks + (int64_t(m) * d.K + b.hyp_codes[hi * d.M + m]) * G;
  double p[G], u[G];
#pragma unroll
  for (int c = 0; c < G; ++c) {
    p[c] = double(b.hyp_v[hi * G + c]) - double(w[c]);
    u[c] = b.u[o * G + c];
  }
#pragma unroll
  for (int r = 0; r < G; ++r) {
    double hp = 0;
#pragma unroll
    for (int c = 0; c < G; ++c) hp += h[r * G + c] * p[c];
    b.queries[t * G + r] = float(u[r] - hp);
  }
  b.query_const[t] = psi<G>(h, u, p);
}

// Candidates of row o: (query_const[o, h] + found_score[o, h, r], h * kk + r); the i-th selected
// is the i-th smallest in (value, index) order, as std::partial_sort over std::pair orders them.
template <int G>
__global__ void beam_select_kernel(BeamBuffers b, int m, int hyps, int kk, int next_hyps) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const LayerDims& d = b.dims;
  if (o >= d.out) return;
  const int total = hyps * kk;
  double prev_value = -__builtin_huge_val();
  int prev_index = -1;
  for (int i = 0; i < next_hyps; ++i) {
    double best_value = __builtin_huge_val();
    int best_index = -1;
    for (int c = 0; c < total; ++c) {
      const int h = c / kk;
      const double v = b.query_const[o * hyps + h] + double(b.found_score[(o * hyps + h) * kk + c % kk]);
      const bool after_prev = v > prev_value || (v == prev_value && c > prev_index);
      const bool before_best = best_index < 0 || v < best_value || (v == best_value && c < best_index);
      if (after_prev && before_best) {
        best_value = v;
        best_index = c;
      }
    }
    if (best_index < 0) best_index = prev_index >= 0 ? prev_index : 0;  // NaN scores only: keep the slot filled
    prev_value = best_value;
    prev_index = best_index;
    const int h = best_index / kk;
    const uint32_t k = b.found[(o * hyps + h) * kk + best_index % kk];
    const int64_t src = o * b.beam + h, dst = o * b.beam + i;
    for (int t = 0; t < d.M; ++t) b.next_codes[dst * d.M + t] = b.hyp_codes[src * d.M + t];
    const float* old_word = b.codebooks + (int64_t(m) * d.K + b.hyp_codes[src * d.M + m]) * G;
    const float* new_word = b.codebooks + (int64_t(m) * d.K + k) * G;
    b.next_codes[dst * d.M + m] = uint16_t(k);
#pragma unroll
    for (int c = 0; c < G; ++c) b.next_v[dst * G + c] = (b.hyp_v[src * G + c] - old_word[c]) + new_word[c];
    b.next_psi[dst] = best_value;
  }
}

template <int G>
__global__ void beam_commit_kernel(BeamBuffers b, int64_t j) {
  __shared__ double h[G * G];
  load_block<G>(b.diagonal, j, h);
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const LayerDims& d = b.dims;
  if (o >= d.out) return;
  uint16_t* codes = b.codes + (o * d.J() + j) * d.M;
  const uint16_t* best = b.hyp_codes + o * b.beam * d.M;
  double v_old[G], v_new[G], u[G];
  float old_sum[G], new_sum[G];
#pragma unroll
  for (int c = 0; c < G; ++c) {
    v_old[c] = v_new[c] = 0;
    old_sum[c] = new_sum[c] = 0;
    u[c] = b.u[o * G + c];
  }
  for (int m = 0; m < d.M; ++m) {
    const float* wo = b.codebooks + (int64_t(m) * d.K + codes[m]) * G;
    const float* wn = b.codebooks + (int64_t(m) * d.K + best[m]) * G;
#pragma unroll
    for (int c = 0; c < G; ++c) {
      v_old[c] += wo[c];
      v_new[c] += wn[c];
      old_sum[c] += wo[c];
      new_sum[c] += wn[c];
    }
  }
  const double psi_old = psi<G>(h, u, v_old), psi_new = psi<G>(h, u, v_new);
  const double s = b.scales[o];
  if (b.row_active[o] && psi_new < psi_old) {
    for (int m = 0; m < d.M; ++m) codes[m] = best[m];
    const float fs = float(s);
#pragma unroll
    for (int c = 0; c < G; ++c) b.delta[o * G + c] = fs * new_sum[c] - fs * old_sum[c];
    b.row_change[o] = s * s * (psi_new - psi_old);
  } else {
#pragma unroll
    for (int c = 0; c < G; ++c) b.delta[o * G + c] = 0.0f;
    b.row_change[o] = 0;
  }
}

}  // namespace

// ---------------------------------------------------------------------------- host wrappers

void row_norm_scales(const float* w, int64_t out, int64_t in, double eps, float* scales, float* residual) {
  if (out == 0) return;
  row_norm_scales_kernel<<<unsigned(out), kBlock>>>(w, in, eps, scales, residual);
  check_launch("AQLM row norms");
}

void dequantize_error(const LayerDims& d, const float* w, const uint16_t* codes, const float* codebooks,
                      const float* scales, float* error) {
  dispatch_g(d.g, [&](auto G) {
    dequantize_kernel<decltype(G)::value, true><<<blocks_for(d.out * d.J()), kBlock>>>(d, w, codes, codebooks, scales, error);
  });
  check_launch("AQLM reconstruction error");
}

void dequantize_layer(const LayerDims& d, const uint16_t* codes, const float* codebooks, const float* scales,
                      float* weight) {
  dispatch_g(d.g, [&](auto G) {
    dequantize_kernel<decltype(G)::value, false><<<blocks_for(d.out * d.J()), kBlock>>>(d, nullptr, codes, codebooks, scales, weight);
  });
  check_launch("AQLM dequantization");
}

void dot_double(const float* a, const float* b, size_t n, double* partials, double* result) {
  dot_partials_kernel<float><<<kDotPartials, kBlock>>>(a, b, n, partials);
  check_launch("double dot product");
  sum_kernel<<<1, 1024>>>(partials, kDotPartials, result);
  check_launch("double dot product (total)");
}

void dot_double(const double* a, const double* b, size_t n, double* partials, double* result) {
  dot_partials_kernel<double><<<kDotPartials, kBlock>>>(a, b, n, partials);
  check_launch("double dot product");
  sum_kernel<<<1, 1024>>>(partials, kDotPartials, result);
  check_launch("double dot product (total)");
}

void float_to_double(const float* src, size_t n, double* dst) {
  if (n == 0) return;
  convert_kernel<float, double><<<grid_stride_blocks(n), kBlock>>>(src, n, dst);
  check_launch("float to double conversion");
}

void double_to_float(const double* src, size_t n, float* dst) {
  if (n == 0) return;
  convert_kernel<double, float><<<grid_stride_blocks(n), kBlock>>>(src, n, dst);
  check_launch("double to float conversion");
}

void difference_to_double(const float* a, const float* b, size_t n, double* dst) {
  if (n == 0) return;
  difference_kernel<<<grid_stride_blocks(n), kBlock>>>(a, b, n, dst);
  check_launch("weight difference");
}

void gather_rows(const float* src, const int64_t* index, int64_t n, int g, float* dst) {
  if (n == 0) return;
  gather_rows_kernel<<<blocks_for(n * g), kBlock>>>(src, index, n, g, dst);
  check_launch("k-means sample gather");
}

void centroid_norms(const float* centroids, int64_t k, int g, float* norms) {
  centroid_norms_kernel<<<blocks_for(k), kBlock>>>(centroids, k, g, norms);
  check_launch("k-means centroid norms");
}

void any_difference(const uint32_t* a, const uint32_t* b, int64_t n, int* changed) {
  check(cudaMemsetAsync(changed, 0, sizeof(int)), "clearing the k-means change flag");
  if (n == 0) return;
  any_difference_kernel<<<blocks_for(n), kBlock>>>(a, b, n, changed);
  check_launch("k-means assignment comparison");
}

SortScratch::~SortScratch() { device_free(p_); }

void* SortScratch::reserve(size_t bytes) {
  if (bytes <= bytes_) return p_;
  device_free(p_);
  p_ = nullptr;
  bytes_ = 0;
  p_ = device_alloc(std::max<size_t>(bytes, 1), "sorting scratch");
  bytes_ = bytes;
  return p_;
}

void sort_pairs(const uint32_t* keys_in, uint32_t* keys_out, const uint32_t* values_in, uint32_t* values_out, int64_t n,
                int end_bit, SortScratch& scratch) {
  if (n == 0) return;
  size_t bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys_in, keys_out, values_in, values_out, n, 0, end_bit),
        "sizing a GPU sort");
  void* temp = scratch.reserve(bytes);
  check(cub::DeviceRadixSort::SortPairs(temp, bytes, keys_in, keys_out, values_in, values_out, n, 0, end_bit),
        "sorting on the GPU");
}

void iota(uint32_t* values, int64_t n) {
  if (n == 0) return;
  iota_kernel<<<blocks_for(n), kBlock>>>(values, n);
  check_launch("index fill");
}

void segment_offsets(const uint32_t* sorted_keys, int64_t n, int64_t keys, int64_t* offsets) {
  segment_offsets_kernel<<<blocks_for(keys + 1), kBlock>>>(sorted_keys, n, keys, offsets);
  check_launch("segment offsets");
}

void centroid_means(const float* data, const uint32_t* members, const int64_t* offsets, int64_t k, int g,
                    float* centroids) {
  centroid_means_kernel<<<blocks_for(k * g), kBlock>>>(data, members, offsets, k, g, centroids);
  check_launch("k-means centroid update");
}

void assign_codes(const uint32_t* assignment, const float* centroids, int64_t n, int g, int M, int m, uint16_t* codes,
                  float* residual) {
  if (n == 0) return;
  assign_codes_kernel<<<blocks_for(n), kBlock>>>(assignment, centroids, n, g, M, m, codes, residual);
  check_launch("k-means code assignment");
}

void code_keys(const uint16_t* codes, int64_t places, int M, int64_t K, uint32_t* keys, uint32_t* values) {
  code_keys_kernel<<<blocks_for(places * M), kBlock>>>(codes, places, M, K, keys, values);
  check_launch("code index keys");
}

void codebook_gradient(const LayerDims& d, const uint32_t* places, const int64_t* offsets, const float* scales,
                       const float* r, double factor, float* grad) {
  dispatch_g(d.g, [&](auto G) {
    codebook_gradient_kernel<decltype(G)::value><<<blocks_for(int64_t(d.M) * d.K * 32), kBlock>>>(d, places, offsets, scales, r, factor,
                                                                                grad);
  });
  check_launch("AQLM codebook gradient");
}

void scale_gradient(const LayerDims& d, const uint16_t* codes, const float* codebooks, const float* r, double factor,
                    float* grad) {
  scale_gradient_kernel<<<blocks_for(d.out * 32), kBlock>>>(d, codes, codebooks, r, factor, grad);
  check_launch("AQLM scale gradient");
}

void adam_step(float* value, const float* grad, float* m, float* v, size_t n, double beta1, double beta2,
               double step_size, double v_correction, double eps) {
  if (n == 0) return;
  adam_kernel<<<blocks_for(int64_t(n)), kBlock>>>(value, grad, m, v, n, beta1, beta2, step_size, v_correction, eps);
  check_launch("Adam step");
}

void permute_square(const float* src, const int64_t* column, int64_t n, float* dst) {
  permute_square_kernel<<<dim3(blocks_for(n), unsigned(n)), kBlock>>>(src, column, n, dst);
  check_launch("XTX permutation");
}

void permute_columns(const float* src, const int64_t* column, int64_t rows, int64_t n, float* dst) {
  permute_columns_kernel<<<dim3(blocks_for(n), unsigned(rows)), kBlock>>>(src, column, n, dst);
  check_launch("column permutation");
}

void beam_start(const BeamBuffers& b, int64_t a, int64_t j) {
  dispatch_g(b.dims.g, [&](auto G) { beam_start_kernel<decltype(G)::value><<<blocks_for(b.dims.out, 128), 128>>>(b, a, j); });
  check_launch("beam search start");
}

void beam_bias(const BeamBuffers& b, int m, int64_t j) {
  dispatch_g(b.dims.g, [&](auto G) { beam_bias_kernel<decltype(G)::value><<<blocks_for(b.dims.K), kBlock>>>(b, m, j); });
  check_launch("beam search codeword norms");
}

void beam_queries(const BeamBuffers& b, int m, int64_t j, int hyps) {
  dispatch_g(b.dims.g, [&](auto G) {
    beam_queries_kernel<decltype(G)::value><<<blocks_for(b.dims.out * hyps, 128), 128>>>(b, m, j, hyps);
  });
  check_launch("beam search queries");
}

void beam_select(const BeamBuffers& b, int m, int hyps, int kk, int next_hyps) {
  dispatch_g(b.dims.g, [&](auto G) {
    beam_select_kernel<decltype(G)::value><<<blocks_for(b.dims.out, 128), 128>>>(b, m, hyps, kk, next_hyps);
  });
  check_launch("beam search selection");
}

void beam_commit(const BeamBuffers& b, int64_t j) {
  dispatch_g(b.dims.g, [&](auto G) { beam_commit_kernel<decltype(G)::value><<<blocks_for(b.dims.out, 128), 128>>>(b, j); });
  check_launch("beam search commit");
}

void sum_double(const double* values, int64_t n, double* total) {
  sum_kernel<<<1, 1024>>>(values, n, total);
  check_launch("double sum");
}

}  // namespace aqlm::cuda
