#pragma once
// Element-wise and row-wise kernels of the training-mode decoder block on the GPU
// (core/quant/block_cuda.cpp drives them; the products go through cuBLAS): the operations of
// core/quant/block_ops.h with the same arithmetic per element (reductions in double), plus the
// fp16 activation transfers and the loss sums of block fine-tuning.
//
// Row-major activations [rows, dim]; device pointers; asynchronous on stream 0, launch checked.
// Every reduction runs over a fixed partition, so results repeat exactly from run to run.
#include <cstddef>
#include <cstdint>

namespace aqlm::cuda {

// ---- RMSNorm (HF): y = w * (x * inv), inv = 1 / sqrt(mean(x^2) + eps) (mean in double).
void rmsnorm_forward(const float* x, int64_t rows, int64_t dim, const float* weight, double eps, float* y,
                     float* inv_rms);
// dx (+)= inv g - x inv^3 (g.x) / dim with g = dy * w (double per row).
void rmsnorm_backward_input(const float* x, const float* inv_rms, int64_t rows, int64_t dim, const float* weight,
                            const float* dy, float* dx, bool accumulate);

// Column reductions over rows, in double, over a fixed partition (partials: kColumnChunks * dim
// doubles): out[c] += sum_r a[r, c] (* b[r, c]) (* row_scale[r]).
constexpr int kColumnChunks = 64;
void column_sums(const float* a, const float* b, const float* row_scale, int64_t rows, int64_t dim, int64_t ld,
                 double* partials, float* out);

// ---- RoPE, HF half-split layout, angles from double tables cos/sin [seqlen, head_dim / 2];
// sign +1 rotates (forward), -1 applies the transpose (backward). In place on x [rows, ld].
void rope_rotate(float* x, int64_t rows, int64_t ld, int64_t heads, int64_t head_dim, const double* cos,
                 const double* sin, int64_t seqlen, double sign);

// ---- Attention rows (scores of one window, [heads, seqlen, seqlen], causal or sliding window).
// In place: S (scaled scores) -> P; lse[heads, seqlen] written.
void softmax_rows(float* s, int64_t heads, int64_t seqlen, int64_t window, float* lse);
// Backward, in place: S (scaled scores) -> P = exp(S - lse) in the band, 0 outside; dP -> dS =
// P * (dP - D) with D[h, i] = row_dot[h, i].
void softmax_backward_rows(float* s, float* dp, const float* lse, const float* row_dot, int64_t heads, int64_t seqlen,
                           int64_t window);
// row_dot[h, i] = sum_c o[i, h*hd + c] * d_o[i, h*hd + c] (double), for one window; ld = heads*hd.
void attention_row_dot(const float* o, const float* d_o, int64_t heads, int64_t seqlen, int64_t head_dim, int64_t ld,
                       float* row_dot);
// dst[i, kvh*hd + c] = sum over the group's query heads h of src[h][i][c] (heads in order).
void sum_head_groups(const float* src, int64_t heads, int64_t kv_heads, int64_t seqlen, int64_t head_dim, float* dst,
                     int64_t ld_dst);

// ---- SwiGLU (double math per element, as block_ops.cpp).
void swiglu_forward(const float* gate, const float* up, int64_t n, float* act);
void swiglu_backward(const float* gate, const float* up, const float* d_act, int64_t n, float* d_gate, float* d_up);

// ---- Small element-wise pieces.
void add(const float* a, const float* b, int64_t n, float* y);  // y may alias a or b
void add_row_bias(float* y, int64_t rows, int64_t dim, const float* bias);
void half_to_float(const uint16_t* src, size_t n, float* dst);
void float_to_half(const float* src, size_t n, uint16_t* dst);  // round to nearest even

// Sums of squares in double: sums[0] += sum (y - t)^2, sums[1] += sum t^2 (partials: 2 *
// kSquarePartials doubles). With dy != null also dy = (y - t) * scale (the MSE gradient).
constexpr int kSquarePartials = 1024;
void squared_error(const float* y, const float* t, size_t n, float scale, float* dy, double* partials, double* sums);

}  // namespace aqlm::cuda
