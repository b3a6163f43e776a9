#include "core/quant/block_ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Core>

#include "core/common/thread_pool.h"

namespace aqlm::block_ops {
namespace {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MapC = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;  // a strided read-only block
template <typename T>
using MapM = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// Fixed chunk sizes (never derived from the thread count) keep every sum in the same order
// whatever the pool size: results are bit-identical on 1 or 64 threads.
constexpr int64_t kTokenChunk = 128;   // rows of activations per GEMM call
// dW = dy^T x is split over weight rows, and every chunk re-packs all of x (tokens x in): few,
// large chunks keep that packing small next to the product (on a 1536x576 dW from 4096 tokens,
// chunks of 32 rows run at 55% of one GEMM's speed, chunks of 192 at 85%).
constexpr int64_t kWeightChunks = 8;
constexpr int64_t kMinWeightChunkRows = 64;
constexpr int64_t kColumnChunk = 256;  // columns per bias-gradient task
constexpr int64_t kElementChunk = 16384;
constexpr int64_t kQueryBlock = 64;    // query rows per attention score block

// Calls fn(begin, end) for each chunk of [0, n), the chunks spread over the pool.
template <typename F>
void for_chunks(ThreadPool& pool, int64_t n, int64_t chunk, const F& fn) {
  if (n <= 0) return;
  const int64_t chunks = (n + chunk - 1) / chunk;
  pool.parallel_for(size_t(chunks), [&](size_t begin, size_t end, int) {
    for (size_t c = begin; c < end; ++c) fn(int64_t(c) * chunk, std::min(n, int64_t(c + 1) * chunk));
  });
}

// Calls fn(task) for each of n independent tasks.
template <typename F>
void for_tasks(ThreadPool& pool, int64_t n, const F& fn) {
  pool.parallel_for(size_t(n), [&](size_t begin, size_t end, int) {
    for (size_t i = begin; i < end; ++i) fn(int64_t(i));
  });
}

}  // namespace

// ---------------------------------------------------------------------------- linear

template <typename T>
void linear_forward(ThreadPool& pool, const T* x, int64_t n, int64_t in, const T* weight, const T* bias, int64_t out,
                    T* y) {
  const MapC<T> W(weight, out, in, Eigen::OuterStride<>(in));
  for_chunks(pool, n, kTokenChunk, [&](int64_t r0, int64_t r1) {
    const MapC<T> X(x + r0 * in, r1 - r0, in, Eigen::OuterStride<>(in));
    MapM<T> Y(y + r0 * out, r1 - r0, out, Eigen::OuterStride<>(out));
    Y.noalias() = X * W.transpose();
    if (bias) Y.rowwise() += Eigen::Map<const RowVec<T>>(bias, out);
  });
}

template <typename T>
void linear_backward_input(ThreadPool& pool, const T* dy, int64_t n, int64_t out, const T* weight, int64_t in, T* dx,
                           bool accumulate) {
  const MapC<T> W(weight, out, in, Eigen::OuterStride<>(in));
  for_chunks(pool, n, kTokenChunk, [&](int64_t r0, int64_t r1) {
    const MapC<T> DY(dy + r0 * out, r1 - r0, out, Eigen::OuterStride<>(out));
    MapM<T> DX(dx + r0 * in, r1 - r0, in, Eigen::OuterStride<>(in));
    if (accumulate)
      DX.noalias() += DY * W;
    else
      DX.noalias() = DY * W;
  });
}

template <typename T>
void linear_backward_weight(ThreadPool& pool, const T* dy, const T* x, int64_t n, int64_t out, int64_t in,
                            T* d_weight) {
  const MapC<T> X(x, n, in, Eigen::OuterStride<>(in));
  const int64_t rows = std::max(kMinWeightChunkRows, ((out + kWeightChunks - 1) / kWeightChunks + 7) / 8 * 8);
  for_chunks(pool, out, rows, [&](int64_t o0, int64_t o1) {
    const MapC<T> DY(dy + o0, n, o1 - o0, Eigen::OuterStride<>(out));
    MapM<T> DW(d_weight + o0 * in, o1 - o0, in, Eigen::OuterStride<>(in));
    DW.noalias() += DY.transpose() * X;
  });
}

template <typename T>
void bias_backward(ThreadPool& pool, const T* dy, int64_t n, int64_t out, T* d_bias) {
  for_chunks(pool, out, kColumnChunk, [&](int64_t c0, int64_t c1) {
    std::vector<double> sum(size_t(c1 - c0), 0.0);
    for (int64_t r = 0; r < n; ++r) {
      const T* row = dy + r * out;
      for (int64_t c = c0; c < c1; ++c) sum[size_t(c - c0)] += double(row[c]);
    }
    for (int64_t c = c0; c < c1; ++c) d_bias[c] = T(double(d_bias[c]) + sum[size_t(c - c0)]);
  });
}

// ---------------------------------------------------------------------------- RMSNorm

template <typename T>
void rmsnorm_forward(ThreadPool& pool, const T* x, int64_t n, int64_t dim, const T* weight, double eps, T* y,
                     T* inv_rms) {
  for_chunks(pool, n, kTokenChunk, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * dim;
      double sum_sq = 0;
      for (int64_t i = 0; i < dim; ++i) sum_sq += double(xr[i]) * double(xr[i]);
      const T inv = T(1.0 / std::sqrt(sum_sq / double(dim) + eps));
      inv_rms[r] = inv;
      T* yr = y + r * dim;
      // HF: weight * (x * rsqrt(var + eps)), the product rounded to the activation type first.
      for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * T(xr[i] * inv);
    }
  });
}

template <typename T>
void rmsnorm_backward(ThreadPool& pool, const T* x, const T* inv_rms, int64_t n, int64_t dim, const T* weight,
                      const T* dy, T* dx, bool accumulate, T* d_weight) {
  // y_i = x_i r w_i with r = (mean(x^2) + eps)^-1/2, dr/dx_i = -r^3 x_i / dim, so
  // dx_i = r g_i - x_i r^3 (g.x) / dim with g = dy * w.
  const int64_t chunks = (n + kTokenChunk - 1) / kTokenChunk;
  std::vector<double> dw_partial(d_weight ? size_t(chunks * dim) : 0, 0.0);
  for_chunks(pool, n, kTokenChunk, [&](int64_t r0, int64_t r1) {
    double* dw = d_weight ? dw_partial.data() + (r0 / kTokenChunk) * dim : nullptr;
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * dim;
      const T* dyr = dy + r * dim;
      T* dxr = dx + r * dim;
      const double inv = double(inv_rms[r]);
      double g_dot_x = 0;
      for (int64_t i = 0; i < dim; ++i) g_dot_x += double(dyr[i]) * double(weight[i]) * double(xr[i]);
      const double c = inv * inv * inv * g_dot_x / double(dim);
      for (int64_t i = 0; i < dim; ++i) {
        const double d = inv * double(dyr[i]) * double(weight[i]) - double(xr[i]) * c;
        dxr[i] = accumulate ? T(double(dxr[i]) + d) : T(d);
      }
      if (dw)
        for (int64_t i = 0; i < dim; ++i) dw[i] += double(dyr[i]) * double(xr[i]) * inv;
    }
  });
  if (!d_weight) return;
  for (int64_t i = 0; i < dim; ++i) {
    double sum = 0;
    for (int64_t c = 0; c < chunks; ++c) sum += dw_partial[size_t(c * dim + i)];
    d_weight[i] = T(double(d_weight[i]) + sum);
  }
}

// ---------------------------------------------------------------------------- RoPE

RopeTable::RopeTable(const std::vector<double>& inv_freq, int64_t seqlen_)
    : seqlen(seqlen_), half(int64_t(inv_freq.size())) {
  cos.resize(size_t(seqlen * half));
  sin.resize(size_t(seqlen * half));
  for (int64_t t = 0; t < seqlen; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(t) * inv_freq[size_t(i)];
      cos[size_t(t * half + i)] = std::cos(angle);
      sin[size_t(t * half + i)] = std::sin(angle);
    }
}

// sign = +1 rotates by the angle, -1 by its opposite (the transpose, for backward).
template <typename T>
static void rope_rotate(ThreadPool& pool, const RopeTable& table, T* x, int64_t rows, int64_t ld, int64_t heads,
                        int64_t head_dim, double sign) {
  const int64_t half = head_dim / 2;
  for_chunks(pool, rows, kTokenChunk, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r % table.seqlen;
      const double* c = table.cos.data() + t * table.half;
      const double* s = table.sin.data() + t * table.half;
      for (int64_t h = 0; h < heads; ++h) {
        T* a = x + r * ld + h * head_dim;
        T* b = a + half;
        for (int64_t i = 0; i < half; ++i) {
          const double ai = double(a[i]), bi = double(b[i]), si = sign * s[i];
          a[i] = T(ai * c[i] - bi * si);
          b[i] = T(bi * c[i] + ai * si);
        }
      }
    }
  });
}

template <typename T>
void rope_forward(ThreadPool& pool, const RopeTable& table, T* x, int64_t rows, int64_t ld, int64_t heads,
                  int64_t head_dim) {
  rope_rotate(pool, table, x, rows, ld, heads, head_dim, 1.0);
}

template <typename T>
void rope_backward(ThreadPool& pool, const RopeTable& table, T* dx, int64_t rows, int64_t ld, int64_t heads,
                   int64_t head_dim) {
  rope_rotate(pool, table, dx, rows, ld, heads, head_dim, -1.0);
}

// ---------------------------------------------------------------------------- attention

namespace {

// First key that query row i may see.
inline int64_t first_key(int64_t i, int64_t window) { return window > 0 ? std::max<int64_t>(0, i - window + 1) : 0; }

// Pointers to one (window, query head) problem.
template <typename T>
struct HeadView {
  const T *q, *k, *v;
  int64_t ldq, ldk;
};

// Fills P[rows r0..r1, keys k0..r1) with the softmax probabilities of the scaled scores
// (zero outside the causal / sliding-window band). With lse == nullptr the probabilities
// are normalised from scratch and the log-sum-exps written to lse_out; otherwise they are
// recomputed from the stored log-sum-exps.
template <typename T>
void attention_probabilities(const HeadView<T>& h, int64_t head_dim, int64_t r0, int64_t r1, int64_t k0,
                             int64_t window, T scale, const T* lse_in, T* lse_out, Mat<T>& P) {
  const int64_t rows = r1 - r0, keys = r1 - k0;
  const MapC<T> Q(h.q + r0 * h.ldq, rows, head_dim, Eigen::OuterStride<>(h.ldq));
  const MapC<T> K(h.k + k0 * h.ldk, keys, head_dim, Eigen::OuterStride<>(h.ldk));
  P.resize(rows, keys);
  P.noalias() = (Q * K.transpose()) * scale;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r0 + r;
    const int64_t lo = first_key(i, window) - k0, hi = i - k0 + 1;  // allowed keys [lo, hi)
    auto row = P.row(r);
    if (lo > 0) row.head(lo).setZero();
    if (hi < keys) row.tail(keys - hi).setZero();
    auto band = row.segment(lo, hi - lo);
    if (lse_in) {
      band = (band.array() - lse_in[i]).exp();
    } else {
      const T max = band.maxCoeff();
      band = (band.array() - max).exp();
      const double sum = band.template cast<double>().sum();
      band /= T(sum);
      lse_out[i] = T(double(max) + std::log(sum));
    }
  }
}

}  // namespace

template <typename T>
void attention_forward(ThreadPool& pool, const AttentionShape& s, const T* q, const T* k, const T* v, T* out,
                       T* lse) {
  const int64_t group = s.heads / s.kv_heads, ldq = s.heads * s.head_dim, ldk = s.kv_heads * s.head_dim;
  const T scale = T(1.0 / std::sqrt(double(s.head_dim)));
  pool.parallel_for(size_t(s.windows * s.heads), [&](size_t begin, size_t end, int) {
    Mat<T> P;
    for (size_t task = begin; task < end; ++task) {
      const int64_t w = int64_t(task) / s.heads, h = int64_t(task) % s.heads, kvh = h / group;
      const int64_t base = w * s.seqlen;
      const HeadView<T> view{q + base * ldq + h * s.head_dim, k + base * ldk + kvh * s.head_dim,
                             v + base * ldk + kvh * s.head_dim, ldq, ldk};
      T* head_lse = lse + (w * s.heads + h) * s.seqlen;
      for (int64_t r0 = 0; r0 < s.seqlen; r0 += kQueryBlock) {
        const int64_t r1 = std::min(s.seqlen, r0 + kQueryBlock);
        const int64_t k0 = first_key(r0, s.sliding_window);
        attention_probabilities(view, s.head_dim, r0, r1, k0, s.sliding_window, scale, static_cast<const T*>(nullptr),
                                head_lse, P);
        const MapC<T> V(view.v + k0 * ldk, r1 - k0, s.head_dim, Eigen::OuterStride<>(ldk));
        MapM<T> O(out + (base + r0) * ldq + h * s.head_dim, r1 - r0, s.head_dim, Eigen::OuterStride<>(ldq));
        O.noalias() = P * V;
      }
    }
  });
}

template <typename T>
void attention_backward(ThreadPool& pool, const AttentionShape& s, const T* q, const T* k, const T* v, const T* out,
                        const T* lse, const T* d_out, T* dq, T* dk, T* dv) {
  const int64_t group = s.heads / s.kv_heads, ldq = s.heads * s.head_dim, ldk = s.kv_heads * s.head_dim;
  const T scale = T(1.0 / std::sqrt(double(s.head_dim)));
  // One task per (window, KV head): the query heads of its group run in a fixed order and
  // accumulate into that KV head's dk / dv, so no two tasks write the same memory.
  pool.parallel_for(size_t(s.windows * s.kv_heads), [&](size_t begin, size_t end, int) {
    Mat<T> P, dP;
    std::vector<T> row_dot(size_t(s.seqlen));
    for (size_t task = begin; task < end; ++task) {
      const int64_t w = int64_t(task) / s.kv_heads, kvh = int64_t(task) % s.kv_heads;
      const int64_t base = w * s.seqlen;
      MapM<T> dK(dk + base * ldk + kvh * s.head_dim, s.seqlen, s.head_dim, Eigen::OuterStride<>(ldk));
      MapM<T> dV(dv + base * ldk + kvh * s.head_dim, s.seqlen, s.head_dim, Eigen::OuterStride<>(ldk));
      dK.setZero();
      dV.setZero();
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const HeadView<T> view{q + base * ldq + h * s.head_dim, k + base * ldk + kvh * s.head_dim,
                               v + base * ldk + kvh * s.head_dim, ldq, ldk};
        const T* head_lse = lse + (w * s.heads + h) * s.seqlen;
        const T* o = out + base * ldq + h * s.head_dim;
        const T* d_o = d_out + base * ldq + h * s.head_dim;
        // D_i = sum_c dO_ic O_ic = sum_j P_ij dP_ij, the softmax backward's row term.
        for (int64_t i = 0; i < s.seqlen; ++i) {
          double dot = 0;
          for (int64_t c = 0; c < s.head_dim; ++c) dot += double(o[i * ldq + c]) * double(d_o[i * ldq + c]);
          row_dot[size_t(i)] = T(dot);
        }
        for (int64_t r0 = 0; r0 < s.seqlen; r0 += kQueryBlock) {
          const int64_t r1 = std::min(s.seqlen, r0 + kQueryBlock), rows = r1 - r0;
          const int64_t k0 = first_key(r0, s.sliding_window), keys = r1 - k0;
          attention_probabilities(view, s.head_dim, r0, r1, k0, s.sliding_window, scale, head_lse,
                                  static_cast<T*>(nullptr), P);
          const MapC<T> Qb(view.q + r0 * ldq, rows, s.head_dim, Eigen::OuterStride<>(ldq));
          const MapC<T> Kb(view.k + k0 * ldk, keys, s.head_dim, Eigen::OuterStride<>(ldk));
          const MapC<T> Vb(view.v + k0 * ldk, keys, s.head_dim, Eigen::OuterStride<>(ldk));
          const MapC<T> dOb(d_o + r0 * ldq, rows, s.head_dim, Eigen::OuterStride<>(ldq));
          dV.middleRows(k0, keys).noalias() += P.transpose() * dOb;
          dP.resize(rows, keys);
          dP.noalias() = dOb * Vb.transpose();
          for (int64_t r = 0; r < rows; ++r) dP.row(r).array() -= row_dot[size_t(r0 + r)];
          dP.array() *= P.array();  // dS = P * (dP - D); masked entries have P = 0
          MapM<T> dQb(dq + (base + r0) * ldq + h * s.head_dim, rows, s.head_dim, Eigen::OuterStride<>(ldq));
          dQb.noalias() = (dP * Kb) * scale;
          dK.middleRows(k0, keys).noalias() += (dP.transpose() * Qb) * scale;
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------- SwiGLU

template <typename T>
void swiglu_forward(ThreadPool& pool, const T* gate, const T* up, int64_t n, T* act) {
  for_chunks(pool, n, kElementChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double g = double(gate[i]);
      act[i] = T(g / (1.0 + std::exp(-g)) * double(up[i]));
    }
  });
}

template <typename T>
void swiglu_backward(ThreadPool& pool, const T* gate, const T* up, const T* d_act, int64_t n, T* d_gate, T* d_up) {
  for_chunks(pool, n, kElementChunk, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double g = double(gate[i]), sig = 1.0 / (1.0 + std::exp(-g)), d = double(d_act[i]);
      d_up[i] = T(d * g * sig);
      d_gate[i] = T(d * double(up[i]) * sig * (1.0 + g * (1.0 - sig)));  // silu'(g)
    }
  });
}

// ---------------------------------------------------------------------------- instantiations

#define AQLM_BLOCK_OPS_INSTANTIATE(T)                                                                                \
  template void linear_forward<T>(ThreadPool&, const T*, int64_t, int64_t, const T*, const T*, int64_t, T*);        \
  template void linear_backward_input<T>(ThreadPool&, const T*, int64_t, int64_t, const T*, int64_t, T*, bool);     \
  template void linear_backward_weight<T>(ThreadPool&, const T*, const T*, int64_t, int64_t, int64_t, T*);          \
  template void bias_backward<T>(ThreadPool&, const T*, int64_t, int64_t, T*);                                      \
  template void rmsnorm_forward<T>(ThreadPool&, const T*, int64_t, int64_t, const T*, double, T*, T*);              \
  template void rmsnorm_backward<T>(ThreadPool&, const T*, const T*, int64_t, int64_t, const T*, const T*, T*, bool, \
                                    T*);                                                                             \
  template void rope_forward<T>(ThreadPool&, const RopeTable&, T*, int64_t, int64_t, int64_t, int64_t);             \
  template void rope_backward<T>(ThreadPool&, const RopeTable&, T*, int64_t, int64_t, int64_t, int64_t);            \
  template void attention_forward<T>(ThreadPool&, const AttentionShape&, const T*, const T*, const T*, T*, T*);      \
  template void attention_backward<T>(ThreadPool&, const AttentionShape&, const T*, const T*, const T*, const T*,   \
                                      const T*, const T*, T*, T*, T*);                                               \
  template void swiglu_forward<T>(ThreadPool&, const T*, const T*, int64_t, T*);                                    \
  template void swiglu_backward<T>(ThreadPool&, const T*, const T*, const T*, int64_t, T*, T*);

AQLM_BLOCK_OPS_INSTANTIATE(float)
AQLM_BLOCK_OPS_INSTANTIATE(double)

}  // namespace aqlm::block_ops
