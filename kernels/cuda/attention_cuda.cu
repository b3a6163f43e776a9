#include "kernels/cuda/attention_cuda.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

using engine::from_float;
using engine::kFullMask;
using engine::load2;
using engine::load8;
using engine::to_float;
using engine::warp_max;
using engine::warp_sum;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxGroupPerBlock = 8;  // query heads of one KV head handled by a decode block
constexpr int kMaxSplits = 64;
constexpr int kTileQ = 16;            // prefill: query rows per block (kWarps x kRowsPerWarp)
constexpr int kRowsPerWarp = kTileQ / kWarps;
constexpr int kTileK = 32;            // prefill: keys per shared-memory tile (one per lane)

__device__ __forceinline__ int first_visible(int pos, int window) { return window > 0 ? max(0, pos - window + 1) : 0; }

// ---------------------------------------------------------------------------------------
// Decode. Block (KV head, split, slice of G query heads). Warps take 32-key batches of the
// split's range in turn: lane = key for the scores (the key row read as 16-byte vectors
// against q broadcast from shared memory), then lane = dimension pair for p . V (each value
// row read as one coalesced warp load). Per warp an online softmax (m, l, o); the block
// merges its warps and writes the split's (m, l, unnormalised o) to the workspace.
template <typename T, int G, int PAIRS>
__global__ void __launch_bounds__(kThreads)
    attention_decode_kernel(const AttentionArgs a, int group, int splits, float* ws) {
  extern __shared__ float smem[];
  const int hd = a.head_dim;
  const int kvh = blockIdx.x, split = blockIdx.y;
  const int g0 = blockIdx.z * G;
  const int heads = min(G, group - g0);
  const int h0 = kvh * group + g0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

  const int pos = *a.pos0;
  const int lo = first_visible(pos, a.window), hi = pos + 1;
  const int per = (hi - lo + splits - 1) / splits;
  const int k0 = lo + split * per, k1 = min(hi, k0 + per);

  float* qs = smem;  // [G][hd], scaled
  const T* q = static_cast<const T*>(a.q);
  for (int i = threadIdx.x; i < G * hd; i += kThreads) {
    const int g = i / hd;
    qs[i] = g < heads ? to_float(q[int64_t(h0) * hd + i]) * a.scale : 0.0f;
  }
  __syncthreads();

  const T* K = static_cast<const T*>(a.k_cache) + int64_t(kvh) * a.capacity * hd;
  const T* V = static_cast<const T*>(a.v_cache) + int64_t(kvh) * a.capacity * hd;
  float m[G], l[G], o[G][PAIRS][2];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) o[g][j][0] = o[g][j][1] = 0.0f;
  }

  for (int base = k0 + warp * 32; base < k1; base += kWarps * 32) {
    const int key = base + lane;
    const bool valid = key < k1;
    float s[G];
#pragma unroll
    for (int g = 0; g < G; ++g) s[g] = 0.0f;
    if (valid) {
      const T* kr = K + int64_t(key) * hd;
      for (int c = 0; c < hd; c += 8) {
        float kv[8];
        load8(kr + c, kv);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float* qg = qs + g * hd + c;
#pragma unroll
          for (int i = 0; i < 8; ++i) s[g] = fmaf(qg[i], kv[i], s[g]);
        }
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float sg = valid ? s[g] : -INFINITY;
      const float mn = fmaxf(m[g], warp_max(sg));  // finite: lane 0's key is valid
      const float alpha = expf(m[g] - mn);          // 0 on the first batch (m = -inf)
      const float p = valid ? expf(sg - mn) : 0.0f;
      l[g] = l[g] * alpha + p;                      // this lane's share; summed at the end
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        o[g][j][0] *= alpha;
        o[g][j][1] *= alpha;
      }
      m[g] = mn;
      s[g] = p;
    }
    const int nk = min(32, k1 - base);
    for (int kk = 0; kk < nk; ++kk) {
      const T* vr = V + int64_t(base + kk) * hd;
      float2 v[PAIRS];
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        const int d = 2 * lane + 64 * j;
        v[j] = d < hd ? load2(vr + d) : make_float2(0.0f, 0.0f);
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const float pk = __shfl_sync(kFullMask, s[g], kk);
#pragma unroll
        for (int j = 0; j < PAIRS; ++j) {
          o[g][j][0] = fmaf(pk, v[j].x, o[g][j][0]);
          o[g][j][1] = fmaf(pk, v[j].y, o[g][j][1]);
        }
      }
    }
  }

  // Merge the warps.
  float* wm = qs + G * hd;        // [kWarps][G]
  float* wl = wm + kWarps * G;    // [kWarps][G]
  float* wo = wl + kWarps * G;    // [kWarps][G][hd]
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const float lsum = warp_sum(l[g]);
    if (lane == 0) {
      wm[warp * G + g] = m[g];
      wl[warp * G + g] = lsum;
    }
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int d = 2 * lane + 64 * j;
      if (d < hd) {
        wo[(warp * G + g) * hd + d] = o[g][j][0];
        wo[(warp * G + g) * hd + d + 1] = o[g][j][1];
      }
    }
  }
  __syncthreads();
  float* ws_o = ws;                                    // [n_heads][splits][hd]
  float* ws_m = ws + int64_t(a.n_heads) * splits * hd;  // [n_heads][splits]
  float* ws_l = ws_m + int64_t(a.n_heads) * splits;
  for (int i = threadIdx.x; i < heads * hd; i += kThreads) {
    const int g = i / hd, d = i - g * hd;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, wm[w * G + g]);
    float L = 0.0f, O = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float mw = wm[w * G + g];
      const float f = mw == -INFINITY ? 0.0f : expf(mw - M);
      L = fmaf(wl[w * G + g], f, L);
      O = fmaf(wo[(w * G + g) * hd + d], f, O);
    }
    const int64_t slot = int64_t(h0 + g) * splits + split;
    ws_o[slot * hd + d] = O;
    if (d == 0) {
      ws_m[slot] = M;
      ws_l[slot] = L;
    }
  }
}

// One block per query head: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
template <typename T>
__global__ void __launch_bounds__(kThreads) attention_combine_kernel(const AttentionArgs a, int splits, const float* ws) {
  __shared__ float weight[kMaxSplits];
  __shared__ float inv_total;
  const int h = blockIdx.x, hd = a.head_dim;
  const float* ws_o = ws + int64_t(h) * splits * hd;
  const float* ws_m = ws + int64_t(a.n_heads) * splits * hd + int64_t(h) * splits;
  const float* ws_l = ws + int64_t(a.n_heads) * splits * hd + int64_t(a.n_heads) * splits + int64_t(h) * splits;
  if (threadIdx.x < 32) {
    float M = -INFINITY;
    for (int s = threadIdx.x; s < splits; s += 32) M = fmaxf(M, ws_m[s]);
    M = warp_max(M);
    float L = 0.0f;
    for (int s = threadIdx.x; s < splits; s += 32) {
      const float f = ws_m[s] == -INFINITY ? 0.0f : expf(ws_m[s] - M);
      weight[s] = f;
      L = fmaf(ws_l[s], f, L);
    }
    L = warp_sum(L);
    if (threadIdx.x == 0) inv_total = 1.0f / L;
  }
  __syncthreads();
  T* out = static_cast<T*>(a.out) + int64_t(h) * hd;
  for (int d = threadIdx.x; d < hd; d += kThreads) {
    float O = 0.0f;
    for (int s = 0; s < splits; ++s) O = fmaf(ws_o[int64_t(s) * hd + d], weight[s], O);
    out[d] = from_float<T>(O * inv_total);
  }
}

// ---------------------------------------------------------------------------------------
// Prefill. Block (16 query tokens, query head); warp w owns query rows 4w..4w+3. Per 32-key
// tile: K and V staged in shared memory as fp32 (K rows padded by one float so lane = key
// reads are conflict-free), scores lane = key for the four rows, online softmax per row,
// then lane = dimension pair for p . V.
template <typename T, int PAIRS>
__global__ void __launch_bounds__(kThreads) attention_prefill_kernel(const AttentionArgs a, int group) {
  extern __shared__ float smem[];
  const int hd = a.head_dim, hdp = hd + 1;
  float* qs = smem;                // [kTileQ][hd], scaled
  float* ks = qs + kTileQ * hd;    // [kTileK][hd + 1]
  float* vs = ks + kTileK * hdp;   // [kTileK][hd] (8-byte aligned: the offset is even)
  const int h = blockIdx.y, kvh = h / group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t0 = blockIdx.x * kTileQ;
  const int nq = min(kTileQ, a.n_tokens - t0);
  const int first = *a.pos0 + t0;
  const int lo = first_visible(first, a.window), hi = first + nq;

  const T* q = static_cast<const T*>(a.q);
  for (int i = threadIdx.x; i < kTileQ * hd; i += kThreads) {
    const int r = i / hd, d = i - r * hd;
    qs[i] = r < nq ? to_float(q[int64_t(t0 + r) * a.ldq + int64_t(h) * hd + d]) * a.scale : 0.0f;
  }
  const T* K = static_cast<const T*>(a.k_cache) + int64_t(kvh) * a.capacity * hd;
  const T* V = static_cast<const T*>(a.v_cache) + int64_t(kvh) * a.capacity * hd;

  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][PAIRS][2];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) o[r][j][0] = o[r][j][1] = 0.0f;
  }
  const int vecs = hd / 8;
  for (int kb = lo; kb < hi; kb += kTileK) {
    const int nk = min(kTileK, hi - kb);
    __syncthreads();  // the previous tile is consumed (and qs written, on the first tile)
    for (int i = threadIdx.x; i < kTileK * vecs; i += kThreads) {
      const int r = i / vecs, c = (i - r * vecs) * 8;
      float kv[8] = {0, 0, 0, 0, 0, 0, 0, 0}, vv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (r < nk) {
        load8(K + int64_t(kb + r) * hd + c, kv);
        load8(V + int64_t(kb + r) * hd + c, vv);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        ks[r * hdp + c + e] = kv[e];
        vs[r * hd + c + e] = vv[e];
      }
    }
    __syncthreads();

    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.0f;
    if (lane < nk) {
      const float* kr = ks + lane * hdp;
      const float* q0 = qs + warp * kRowsPerWarp * hd;
      for (int d = 0; d < hd; ++d) {
        const float kd = kr[d];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) s[r] = fmaf(q0[r * hd + d], kd, s[r]);
      }
    }
    const int key = kb + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      const int p = first + row;
      const bool visible = row < nq && lane < nk && key <= p && key >= first_visible(p, a.window);
      const float sr = visible ? s[r] : -INFINITY;
      const float mx = warp_max(sr);
      if (mx == -INFINITY) {  // no key of this tile is visible to this row (warp-uniform)
        s[r] = 0.0f;
        continue;
      }
      const float mn = fmaxf(m[r], mx);
      const float alpha = expf(m[r] - mn);
      const float pr = visible ? expf(sr - mn) : 0.0f;
      l[r] = l[r] * alpha + pr;
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        o[r][j][0] *= alpha;
        o[r][j][1] *= alpha;
      }
      m[r] = mn;
      s[r] = pr;
    }
    for (int kk = 0; kk < nk; ++kk) {
      float2 v[PAIRS];
#pragma unroll
      for (int j = 0; j < PAIRS; ++j) {
        const int d = 2 * lane + 64 * j;
        v[j] = d < hd ? *reinterpret_cast<const float2*>(vs + kk * hd + d) : make_float2(0.0f, 0.0f);
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float pk = __shfl_sync(kFullMask, s[r], kk);
#pragma unroll
        for (int j = 0; j < PAIRS; ++j) {
          o[r][j][0] = fmaf(pk, v[j].x, o[r][j][0]);
          o[r][j][1] = fmaf(pk, v[j].y, o[r][j][1]);
        }
      }
    }
  }

  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= nq) continue;  // warp-uniform
    const float inv = 1.0f / warp_sum(l[r]);
    T* orow = out + int64_t(t0 + row) * a.ldo + int64_t(h) * hd;
#pragma unroll
    for (int j = 0; j < PAIRS; ++j) {
      const int d = 2 * lane + 64 * j;
      if (d < hd) {
        orow[d] = from_float<T>(o[r][j][0] * inv);
        orow[d + 1] = from_float<T>(o[r][j][1] * inv);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------

int pairs_for(int head_dim) { return head_dim <= 64 ? 1 : head_dim <= 128 ? 2 : 4; }
int group_tile(int group) { return group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : kMaxGroupPerBlock; }

template <typename Kernel>
void allow_smem(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return;
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  int device = 0;
  check(cudaGetDevice(&device), "reading the current CUDA device");
  const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), device);
  std::lock_guard<std::mutex> lock(mutex);
  if (done.count(key)) return;
  AQLM_CHECK(bytes <= size_t(device_properties().max_smem_per_block), "attention needs ", bytes,
             " bytes of shared memory per block but this GPU gives at most ", device_properties().max_smem_per_block);
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)),
        "raising the attention kernel's shared-memory limit");
  done.insert(key);
}

template <typename T, int G, int PAIRS>
void launch_decode(const AttentionArgs& a, int splits, float* ws, cudaStream_t stream) {
  const int group = a.n_heads / a.kv_heads;
  const dim3 grid(unsigned(a.kv_heads), unsigned(splits), unsigned((group + G - 1) / G));
  const size_t smem = size_t(5 * G * a.head_dim + 2 * kWarps * G) * sizeof(float);
  attention_decode_kernel<T, G, PAIRS><<<grid, kThreads, smem, stream>>>(a, group, splits, ws);
  check_launch("attention (decode)");
  attention_combine_kernel<T><<<unsigned(a.n_heads), kThreads, 0, stream>>>(a, splits, ws);
  check_launch("attention (decode combine)");
}

template <typename T, int G>
void decode_pairs(const AttentionArgs& a, int splits, float* ws, cudaStream_t stream) {
  switch (pairs_for(a.head_dim)) {
    case 1: return launch_decode<T, G, 1>(a, splits, ws, stream);
    case 2: return launch_decode<T, G, 2>(a, splits, ws, stream);
    default: return launch_decode<T, G, 4>(a, splits, ws, stream);
  }
}

template <typename T>
void decode_typed(const AttentionArgs& a, int splits, float* ws, cudaStream_t stream) {
  switch (group_tile(a.n_heads / a.kv_heads)) {
    case 1: return decode_pairs<T, 1>(a, splits, ws, stream);
    case 2: return decode_pairs<T, 2>(a, splits, ws, stream);
    case 4: return decode_pairs<T, 4>(a, splits, ws, stream);
    default: return decode_pairs<T, kMaxGroupPerBlock>(a, splits, ws, stream);
  }
}

template <typename T, int PAIRS>
void launch_prefill(const AttentionArgs& a, cudaStream_t stream) {
  const auto kernel = attention_prefill_kernel<T, PAIRS>;
  const size_t smem = size_t(kTileQ * a.head_dim + kTileK * (a.head_dim + 1) + kTileK * a.head_dim) * sizeof(float);
  allow_smem(kernel, smem);
  const dim3 grid(unsigned((a.n_tokens + kTileQ - 1) / kTileQ), unsigned(a.n_heads));
  kernel<<<grid, kThreads, smem, stream>>>(a, a.n_heads / a.kv_heads);
  check_launch("attention (prefill)");
}

template <typename T>
void prefill_typed(const AttentionArgs& a, cudaStream_t stream) {
  switch (pairs_for(a.head_dim)) {
    case 1: return launch_prefill<T, 1>(a, stream);
    case 2: return launch_prefill<T, 2>(a, stream);
    default: return launch_prefill<T, 4>(a, stream);
  }
}

}  // namespace

void check_attention_shape(const AttentionArgs& a) {
  AQLM_CHECK(a.head_dim > 0 && a.head_dim % 8 == 0 && a.head_dim <= kMaxAttentionHeadDim, "attention: head dimension ",
             a.head_dim, " is not supported on CUDA (a multiple of 8 up to ", kMaxAttentionHeadDim, ")");
  AQLM_CHECK(a.n_heads > 0 && a.kv_heads > 0 && a.n_heads % a.kv_heads == 0, "attention: ", a.n_heads,
             " query heads do not split into ", a.kv_heads, " KV heads");
  AQLM_CHECK(a.capacity > 0 && a.window >= 0, "attention: cache capacity ", a.capacity, ", window ", a.window);
  AQLM_CHECK(a.q && a.out && a.k_cache && a.v_cache && a.pos0, "attention: missing buffer");
  AQLM_CHECK(a.ldq >= int64_t(a.n_heads) * a.head_dim && a.ldo >= int64_t(a.n_heads) * a.head_dim,
             "attention: row strides ", a.ldq, "/", a.ldo, " are shorter than ", a.n_heads, " heads of ", a.head_dim);
}

int attention_decode_splits(int n_heads, int kv_heads, int capacity) {
  const int group = n_heads / std::max(1, kv_heads);
  const int tile = group_tile(group);
  const int blocks_per_split = kv_heads * ((group + tile - 1) / tile);
  const int fill = (2 * device_properties().sm_count + blocks_per_split - 1) / blocks_per_split;
  return std::clamp(fill, 1, std::clamp(capacity / 32, 1, kMaxSplits));
}

size_t attention_decode_workspace_floats(int n_heads, int head_dim, int splits) {
  return size_t(n_heads) * size_t(splits) * size_t(head_dim + 2);
}

void attention_decode(const AttentionArgs& a, int splits, float* workspace, DType act, cudaStream_t stream) {
  check_attention_shape(a);
  AQLM_CHECK(a.n_tokens == 1, "attention (decode): ", a.n_tokens, " query tokens (the decode kernel takes one)");
  AQLM_CHECK(splits >= 1 && splits <= kMaxSplits && workspace, "attention (decode): ", splits,
             " splits (1..", kMaxSplits, ") or no workspace");
  if (act == DType::BF16)
    decode_typed<__nv_bfloat16>(a, splits, workspace, stream);
  else
    decode_typed<__half>(a, splits, workspace, stream);
}

void attention_prefill(const AttentionArgs& a, DType act, cudaStream_t stream) {
  check_attention_shape(a);
  if (a.n_tokens == 0) return;
  AQLM_CHECK(a.n_tokens > 0, "attention (prefill): ", a.n_tokens, " query tokens");
  if (act == DType::BF16)
    prefill_typed<__nv_bfloat16>(a, stream);
  else
    prefill_typed<__half>(a, stream);
}

}  // namespace aqlm::cuda
