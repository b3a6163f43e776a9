// Kernels of the training-mode block on the GPU (see quant_block_cuda.h); each follows the
// matching loop of core/quant/block_ops.cpp element for element.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/quant_block_cuda.h"
#include "kernels/cuda/quant_kernel_common.cuh"

namespace aqlm::cuda {

namespace {

using namespace quant_kernels;

unsigned grid_stride_blocks(int64_t n) { return unsigned(std::min<int64_t>((n + kBlock - 1) / kBlock, 16384)); }

__device__ float warp_max(float v) {
  for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
  return v;
}

__global__ void rmsnorm_forward_kernel(const float* __restrict__ x, int64_t dim, const float* __restrict__ w, double eps,
                                       float* __restrict__ y, float* __restrict__ inv_rms) {
  __shared__ double shared[kBlock];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * dim;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += double(xr[i]) * double(xr[i]);
  const float inv = float(1.0 / sqrt(block_sum(sum, shared) / double(dim) + eps));
  if (threadIdx.x == 0) inv_rms[r] = inv;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) y[r * dim + i] = w[i] * (xr[i] * inv);
}

__global__ void rmsnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ inv_rms, int64_t dim,
                                        const float* __restrict__ w, const float* __restrict__ dy, float* __restrict__ dx,
                                        bool accumulate) {
  __shared__ double shared[kBlock];
  const int64_t r = blockIdx.x;
  const float* xr = x + r * dim;
  const float* dyr = dy + r * dim;
  double dot = 0;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dot += double(dyr[i]) * double(w[i]) * double(xr[i]);
  const double g_dot_x = block_sum(dot, shared);
  const double inv = double(inv_rms[r]);
  const double c = inv * inv * inv * g_dot_x / double(dim);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const double d = inv * double(dyr[i]) * double(w[i]) - double(xr[i]) * c;
    dx[r * dim + i] = accumulate ? float(double(dx[r * dim + i]) + d) : float(d);
  }
}

__global__ void column_partials_kernel(const float* __restrict__ a, const float* __restrict__ b,
                                       const float* __restrict__ row_scale, int64_t rows, int64_t dim, int64_t ld,
                                       int64_t chunk, double* __restrict__ partials) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(rows, r0 + chunk);
  double sum = 0;
  for (int64_t r = r0; r < r1; ++r) {
    double v = double(a[r * ld + c]);
    if (b) v *= double(b[r * ld + c]);
    if (row_scale) v *= double(row_scale[r]);
    sum += v;
  }
  partials[int64_t(blockIdx.y) * dim + c] = sum;
}

__global__ void column_total_kernel(const double* __restrict__ partials, int64_t dim, float* __restrict__ out) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  double sum = 0;
  for (int k = 0; k < kColumnChunks; ++k) sum += partials[int64_t(k) * dim + c];
  out[c] = float(double(out[c]) + sum);
}

__global__ void rope_kernel(float* __restrict__ x, int64_t rows, int64_t ld, int64_t heads, int64_t head_dim,
                            const double* __restrict__ cos_t, const double* __restrict__ sin_t, int64_t seqlen,
                            double sign) {
  const int64_t half = head_dim / 2;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * heads * half) return;
  const int64_t i = idx % half, h = (idx / half) % heads, r = idx / (half * heads);
  const int64_t t = r % seqlen;
  float* a = x + r * ld + h * head_dim;
  const double ai = a[i], bi = a[i + half], c = cos_t[t * half + i], s = sign * sin_t[t * half + i];
  a[i] = float(ai * c - bi * s);
  a[i + half] = float(bi * c + ai * s);
}

__device__ __forceinline__ int64_t first_key(int64_t i, int64_t window) { return window > 0 ? max(int64_t(0), i - window + 1) : 0; }

// One warp per row (h, i) of a window's scores.
__global__ void softmax_kernel(float* __restrict__ s, int64_t heads, int64_t seqlen, int64_t window,
                               float* __restrict__ lse) {
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= heads * seqlen) return;
  const int64_t i = row % seqlen, lo = first_key(i, window), hi = i + 1;
  float* p = s + row * seqlen;
  float mx = -__builtin_huge_valf();
  for (int64_t j = lo + lane; j < hi; j += 32) mx = fmaxf(mx, p[j]);
  mx = warp_max(mx);
  double sum = 0;
  for (int64_t j = lo + lane; j < hi; j += 32) {
    const float e = expf(p[j] - mx);
    p[j] = e;
    sum += double(e);
  }
  sum = warp_sum(sum);
  __syncwarp();  // other lanes' exponentials are read below
  const float denom = float(sum);
  for (int64_t j = lane; j < seqlen; j += 32) p[j] = (j >= lo && j < hi) ? p[j] / denom : 0.0f;
  if (lane == 0) lse[row] = float(double(mx) + log(sum));
}

__global__ void softmax_backward_kernel(float* __restrict__ s, float* __restrict__ dp, const float* __restrict__ lse,
                                        const float* __restrict__ row_dot, int64_t heads, int64_t seqlen,
                                        int64_t window) {
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= heads * seqlen) return;
  const int64_t i = row % seqlen, lo = first_key(i, window), hi = i + 1;
  float* p = s + row * seqlen;
  float* d = dp + row * seqlen;
  const float l = lse[row], dot = row_dot[row];
  for (int64_t j = lane; j < seqlen; j += 32) {
    if (j >= lo && j < hi) {
      const float pj = expf(p[j] - l);
      p[j] = pj;
      d[j] = (d[j] - dot) * pj;
    } else {
      p[j] = 0.0f;
      d[j] = 0.0f;
    }
  }
}

__global__ void row_dot_kernel(const float* __restrict__ o, const float* __restrict__ d_o, int64_t heads,
                               int64_t seqlen, int64_t head_dim, int64_t ld, float* __restrict__ row_dot) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= heads * seqlen) return;
  const int64_t h = idx / seqlen, i = idx % seqlen;
  const float* a = o + i * ld + h * head_dim;
  const float* b = d_o + i * ld + h * head_dim;
  double dot = 0;
  for (int64_t c = 0; c < head_dim; ++c) dot += double(a[c]) * double(b[c]);
  row_dot[idx] = float(dot);
}

__global__ void sum_head_groups_kernel(const float* __restrict__ src, int64_t heads, int64_t kv_heads, int64_t seqlen,
                                       int64_t head_dim, float* __restrict__ dst, int64_t ld_dst) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= kv_heads * seqlen * head_dim) return;
  const int64_t c = idx % head_dim, i = (idx / head_dim) % seqlen, kvh = idx / (head_dim * seqlen);
  const int64_t group = heads / kv_heads;
  float sum = 0;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) sum += src[(h * seqlen + i) * head_dim + c];
  dst[i * ld_dst + kvh * head_dim + c] = sum;
}

__global__ void swiglu_forward_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n,
                                      float* __restrict__ act) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double g = gate[i];
    act[i] = float(g / (1.0 + exp(-g)) * double(up[i]));
  }
}

__global__ void swiglu_backward_kernel(const float* __restrict__ gate, const float* __restrict__ up,
                                       const float* d_act, int64_t n, float* d_gate, float* __restrict__ d_up) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double g = gate[i], sig = 1.0 / (1.0 + exp(-g)), d = d_act[i];
    d_up[i] = float(d * g * sig);
    d_gate[i] = float(d * double(up[i]) * sig * (1.0 + g * (1.0 - sig)));  // d_gate may alias d_act
  }
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, float* y) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

__global__ void add_row_bias_kernel(float* __restrict__ y, int64_t rows, int64_t dim, const float* __restrict__ bias) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * dim; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += bias[i % dim];
}

__global__ void half_to_float_kernel(const __half* __restrict__ src, size_t n, float* __restrict__ dst) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = __half2float(src[i]);
}

__global__ void float_to_half_kernel(const float* __restrict__ src, size_t n, __half* __restrict__ dst) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = __float2half_rn(src[i]);
}

__global__ void squared_error_partials_kernel(const float* __restrict__ y, const float* __restrict__ t, size_t n,
                                              float scale, float* __restrict__ dy, double* __restrict__ partials) {
  __shared__ double shared[kBlock];
  double err = 0, tar = 0;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    if (dy) {  // block_finetuner.cpp's training loss: the float difference, squared in double
      const float d = y[i] - t[i];
      err += double(d) * double(d);
      dy[i] = d * scale;
    } else {   // its evaluation: the difference in double
      const double d = double(y[i]) - double(t[i]);
      err += d * d;
    }
    tar += double(t[i]) * double(t[i]);
  }
  const double e = block_sum(err, shared);
  const double q = block_sum(tar, shared);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = e;
    partials[2 * blockIdx.x + 1] = q;
  }
}

__global__ void squared_error_total_kernel(const double* __restrict__ partials, double* __restrict__ sums) {
  __shared__ double shared[1024];
  const double e = block_sum(partials[2 * threadIdx.x], shared);
  const double q = block_sum(partials[2 * threadIdx.x + 1], shared);
  if (threadIdx.x == 0) {
    sums[0] += e;
    sums[1] += q;
  }
}

}  // namespace

void rmsnorm_forward(const float* x, int64_t rows, int64_t dim, const float* weight, double eps, float* y,
                     float* inv_rms) {
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<unsigned(rows), kBlock>>>(x, dim, weight, eps, y, inv_rms);
  check_launch("RMSNorm (training block)");
}

void rmsnorm_backward_input(const float* x, const float* inv_rms, int64_t rows, int64_t dim, const float* weight,
                            const float* dy, float* dx, bool accumulate) {
  if (rows == 0) return;
  rmsnorm_backward_kernel<<<unsigned(rows), kBlock>>>(x, inv_rms, dim, weight, dy, dx, accumulate);
  check_launch("RMSNorm backward");
}

void column_sums(const float* a, const float* b, const float* row_scale, int64_t rows, int64_t dim, int64_t ld,
                 double* partials, float* out) {
  const int64_t chunk = std::max<int64_t>(1, (rows + kColumnChunks - 1) / kColumnChunks);
  column_partials_kernel<<<dim3(blocks_for(dim), kColumnChunks), kBlock>>>(a, b, row_scale, rows, dim, ld, chunk,
                                                                           partials);
  check_launch("column sums");
  column_total_kernel<<<blocks_for(dim), kBlock>>>(partials, dim, out);
  check_launch("column sums (total)");
}

void rope_rotate(float* x, int64_t rows, int64_t ld, int64_t heads, int64_t head_dim, const double* cos,
                 const double* sin, int64_t seqlen, double sign) {
  const int64_t n = rows * heads * (head_dim / 2);
  if (n == 0) return;
  rope_kernel<<<blocks_for(n), kBlock>>>(x, rows, ld, heads, head_dim, cos, sin, seqlen, sign);
  check_launch("RoPE (training block)");
}

void softmax_rows(float* s, int64_t heads, int64_t seqlen, int64_t window, float* lse) {
  softmax_kernel<<<blocks_for(heads * seqlen * 32), kBlock>>>(s, heads, seqlen, window, lse);
  check_launch("attention softmax");
}

void softmax_backward_rows(float* s, float* dp, const float* lse, const float* row_dot, int64_t heads, int64_t seqlen,
                           int64_t window) {
  softmax_backward_kernel<<<blocks_for(heads * seqlen * 32), kBlock>>>(s, dp, lse, row_dot, heads, seqlen, window);
  check_launch("attention softmax backward");
}

void attention_row_dot(const float* o, const float* d_o, int64_t heads, int64_t seqlen, int64_t head_dim, int64_t ld,
                       float* row_dot) {
  row_dot_kernel<<<blocks_for(heads * seqlen), kBlock>>>(o, d_o, heads, seqlen, head_dim, ld, row_dot);
  check_launch("attention row dot");
}

void sum_head_groups(const float* src, int64_t heads, int64_t kv_heads, int64_t seqlen, int64_t head_dim, float* dst,
                     int64_t ld_dst) {
  sum_head_groups_kernel<<<blocks_for(kv_heads * seqlen * head_dim), kBlock>>>(src, heads, kv_heads, seqlen, head_dim,
                                                                              dst, ld_dst);
  check_launch("attention head-group sum");
}

void swiglu_forward(const float* gate, const float* up, int64_t n, float* act) {
  if (n == 0) return;
  swiglu_forward_kernel<<<grid_stride_blocks(n), kBlock>>>(gate, up, n, act);
  check_launch("SwiGLU (training block)");
}

void swiglu_backward(const float* gate, const float* up, const float* d_act, int64_t n, float* d_gate, float* d_up) {
  if (n == 0) return;
  swiglu_backward_kernel<<<grid_stride_blocks(n), kBlock>>>(gate, up, d_act, n, d_gate, d_up);
  check_launch("SwiGLU backward");
}

void add(const float* a, const float* b, int64_t n, float* y) {
  if (n == 0) return;
  add_kernel<<<grid_stride_blocks(n), kBlock>>>(a, b, n, y);
  check_launch("residual add");
}

void add_row_bias(float* y, int64_t rows, int64_t dim, const float* bias) {
  if (rows * dim == 0) return;
  add_row_bias_kernel<<<grid_stride_blocks(rows * dim), kBlock>>>(y, rows, dim, bias);
  check_launch("bias add");
}

void half_to_float(const uint16_t* src, size_t n, float* dst) {
  if (n == 0) return;
  half_to_float_kernel<<<grid_stride_blocks(int64_t(n)), kBlock>>>(reinterpret_cast<const __half*>(src), n, dst);
  check_launch("fp16 to fp32");
}

void float_to_half(const float* src, size_t n, uint16_t* dst) {
  if (n == 0) return;
  float_to_half_kernel<<<grid_stride_blocks(int64_t(n)), kBlock>>>(src, n, reinterpret_cast<__half*>(dst));
  check_launch("fp32 to fp16");
}

void squared_error(const float* y, const float* t, size_t n, float scale, float* dy, double* partials, double* sums) {
  squared_error_partials_kernel<<<kSquarePartials, kBlock>>>(y, t, n, scale, dy, partials);
  check_launch("squared error");
  squared_error_total_kernel<<<1, kSquarePartials>>>(partials, sums);
  check_launch("squared error (total)");
}

}  // namespace aqlm::cuda
