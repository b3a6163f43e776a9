#pragma once
// The operations of a training-mode decoder block, forward and hand-written backward, on
// row-major activations [tokens, features]. Templated on the scalar: float for training,
// double for the finite-difference gradient checks (both instantiated in block_ops.cpp).
// Reductions (norm mean squares, softmax sums, gradient sums over tokens) run in double.
//
// Parallel loops use the given ThreadPool over fixed-size chunks, so results are
// bit-identical whatever the number of threads.
#include <cstdint>
#include <vector>

namespace aqlm {

class ThreadPool;

namespace block_ops {

// ---- Linear layers: y = x W^T (+ b), W row-major [out, in] as PyTorch stores a Linear.
// y[n, out] = x[n, in] W^T + bias (bias may be null).
template <typename T>
void linear_forward(ThreadPool& pool, const T* x, int64_t n, int64_t in, const T* weight, const T* bias, int64_t out,
                    T* y);
// dx[n, in] (+)= dy[n, out] W. Accumulates when `accumulate`, else overwrites.
template <typename T>
void linear_backward_input(ThreadPool& pool, const T* dy, int64_t n, int64_t out, const T* weight, int64_t in, T* dx,
                           bool accumulate);
// d_weight[out, in] += dy^T x.
template <typename T>
void linear_backward_weight(ThreadPool& pool, const T* dy, const T* x, int64_t n, int64_t out, int64_t in,
                            T* d_weight);
// d_bias[out] += column sums of dy.
template <typename T>
void bias_backward(ThreadPool& pool, const T* dy, int64_t n, int64_t out, T* d_bias);

// ---- RMSNorm as Hugging Face computes it: y = x / sqrt(mean(x^2) + eps) * w.
// Writes inv_rms[n] = 1 / sqrt(mean(x^2) + eps) for the backward pass.
template <typename T>
void rmsnorm_forward(ThreadPool& pool, const T* x, int64_t n, int64_t dim, const T* weight, double eps, T* y,
                     T* inv_rms);
// dx[n, dim] (+)= d/dx; d_weight[dim] += sum over tokens of dy * x * inv_rms.
template <typename T>
void rmsnorm_backward(ThreadPool& pool, const T* x, const T* inv_rms, int64_t n, int64_t dim, const T* weight,
                      const T* dy, T* dx, bool accumulate, T* d_weight);

// ---- Rotary position embedding, HF half-split layout: in each head element i pairs with
// i + head_dim/2. Token t of a window sits at position t (t = row % seqlen).
// Angles are position * inv_freq[i], computed in double.
struct RopeTable {
  int64_t seqlen = 0, half = 0;
  std::vector<double> cos, sin;  // [seqlen, half]
  RopeTable() = default;
  RopeTable(const std::vector<double>& inv_freq, int64_t seqlen);
};
// Rotates in place the `heads` heads of every row of x [rows, ld] (rows = windows * seqlen).
template <typename T>
void rope_forward(ThreadPool& pool, const RopeTable& table, T* x, int64_t rows, int64_t ld, int64_t heads,
                  int64_t head_dim);
// The transpose rotation, in place: turns d(rotated) into d(unrotated).
template <typename T>
void rope_backward(ThreadPool& pool, const RopeTable& table, T* dx, int64_t rows, int64_t ld, int64_t heads,
                   int64_t head_dim);

// ---- Causal grouped-query attention over `windows` independent windows of `seqlen` tokens.
// q [windows*seqlen, heads*head_dim]; k, v [windows*seqlen, kv_heads*head_dim]; out like q.
// Query head h reads KV head h / (heads / kv_heads). Scores are scaled by 1/sqrt(head_dim);
// with window > 0 (Mistral's sliding window) token t sees keys (t - window, t].
// Forward keeps lse [windows, heads, seqlen] (log of each softmax denominator) so backward
// recomputes the probabilities instead of storing seqlen^2 of them per head.
struct AttentionShape {
  int64_t windows = 0, seqlen = 0, heads = 0, kv_heads = 0, head_dim = 0, sliding_window = 0;
};
template <typename T>
void attention_forward(ThreadPool& pool, const AttentionShape& s, const T* q, const T* k, const T* v, T* out,
                       T* lse);
// Writes dq (like q), dk and dv (like k, v) from d_out and the forward's q, k, v, out, lse.
template <typename T>
void attention_backward(ThreadPool& pool, const AttentionShape& s, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, const T* d_out, T* dq, T* dk, T* dv);

// ---- SwiGLU: act = silu(gate) * up, elementwise over n values. d_gate may be d_act.
template <typename T>
void swiglu_forward(ThreadPool& pool, const T* gate, const T* up, int64_t n, T* act);
template <typename T>
void swiglu_backward(ThreadPool& pool, const T* gate, const T* up, const T* d_act, int64_t n, T* d_gate, T* d_up);

}  // namespace block_ops
}  // namespace aqlm
