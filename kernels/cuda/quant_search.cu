// Candidate search on the GPU (see quant_search_cuda.h): fp32 scores on the CUDA cores with the
// CPU kernels' exact arithmetic, candidates staged through shared memory and read as warp-wide
// broadcasts, the candidate set split into slices across blocks when there are too few queries
// to fill the GPU, then a merge that keeps the lower index on ties.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/quant_search_cuda.h"

namespace aqlm::cuda {

namespace {

constexpr int kThreads = 256;     // threads per block of the nearest search
constexpr int kTopKThreads = 128; // threads (queries) per block of the top-k search
constexpr int kChunk = 32;        // candidates per running-minimum chunk (rescanned at the end)
constexpr int kStage = 256;       // candidates staged in shared memory at a time
constexpr int kMaxTopK = 64;
constexpr float kInf = __builtin_huge_valf();

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Stages candidates [first, first + kStage) into shared memory; past `count` the bias is +inf
// and the vector zero, so padding never wins.
template <int G>
__device__ void stage_candidates(const float* __restrict__ vectors, const float* __restrict__ bias, int64_t first,
                                 int64_t end, float* s_vec, float* s_bias) {
  const int64_t m = end - first;
  for (int i = threadIdx.x; i < kStage * G; i += blockDim.x) s_vec[i] = i / G < m ? vectors[first * G + i] : 0.0f;
  for (int i = threadIdx.x; i < kStage; i += blockDim.x) s_bias[i] = i < m ? bias[first + i] : kInf;
}

template <int G>
__device__ __forceinline__ float score_of(const float* qm2, const float* v, float b) {
  float acc = b;
#pragma unroll
  for (int d = 0; d < G; ++d) acc = fmaf(qm2[d], v[d], acc);
  return acc;
}

template <int G>
__device__ __forceinline__ void load_vector(const float* p, float* v) {
  if constexpr (G % 4 == 0) {
#pragma unroll
    for (int d = 0; d < G; d += 4) {
      const float4 x = *reinterpret_cast<const float4*>(p + d);
      v[d] = x.x;
      v[d + 1] = x.y;
      v[d + 2] = x.z;
      v[d + 3] = x.w;
    }
  } else {
#pragma unroll
    for (int d = 0; d < G; ++d) v[d] = p[d];
  }
}

// Each thread owns QPT queries; the block scans candidates [slice * slice_size, ...) and writes
// each query's minimum score and its first (lowest) index to out_*[slice][query].
template <int G, int QPT>
__global__ void __launch_bounds__(kThreads) nearest_kernel(const float* __restrict__ vectors,
                                                           const float* __restrict__ bias, int64_t count,
                                                           const float* __restrict__ queries, int64_t n,
                                                           int64_t slice_size, float* __restrict__ out_score,
                                                           uint32_t* __restrict__ out_index) {
  __shared__ __align__(16) float s_vec[kStage * G];
  __shared__ float s_bias[kStage];
  const int64_t tile = int64_t(blockIdx.x) * kThreads * QPT;
  const int64_t c_begin = int64_t(blockIdx.y) * slice_size;
  const int64_t c_end = min(count, c_begin + slice_size);

  float qm2[QPT][G], best[QPT];
  int best_chunk[QPT];
#pragma unroll
  for (int k = 0; k < QPT; ++k) {
    const int64_t qi = tile + int64_t(k) * kThreads + threadIdx.x;
#pragma unroll
    for (int d = 0; d < G; ++d) qm2[k][d] = qi < n ? -2.0f * queries[qi * G + d] : 0.0f;
    best[k] = kInf;
    best_chunk[k] = -1;
  }
  for (int64_t stage = c_begin; stage < c_end; stage += kStage) {
    __syncthreads();
    stage_candidates<G>(vectors, bias, stage, min(c_end, stage + kStage), s_vec, s_bias);
    __syncthreads();
    const int staged = int(min(int64_t(kStage), c_end - stage));
    for (int c0 = 0; c0 < staged; c0 += kChunk) {
      float low[QPT];
#pragma unroll
      for (int k = 0; k < QPT; ++k) low[k] = kInf;
#pragma unroll 4
      for (int c = c0; c < c0 + kChunk; ++c) {
        float v[G];
        load_vector<G>(s_vec + c * G, v);
        const float b = s_bias[c];
#pragma unroll
        for (int k = 0; k < QPT; ++k) low[k] = fminf(low[k], score_of<G>(qm2[k], v, b));
      }
#pragma unroll
      for (int k = 0; k < QPT; ++k)
        if (low[k] < best[k]) {
          best[k] = low[k];
          best_chunk[k] = int(stage + c0);
        }
    }
  }
  // The first candidate of the winning chunk that reaches the minimum.
#pragma unroll
  for (int k = 0; k < QPT; ++k) {
    const int64_t qi = tile + int64_t(k) * kThreads + threadIdx.x;
    if (qi >= n) continue;
    int64_t arg = c_begin;
    float score = best[k];
    if (best_chunk[k] < 0) {  // every score +inf or NaN: the slice's first candidate, as it scores
      float v[G];
      for (int d = 0; d < G; ++d) v[d] = vectors[c_begin * G + d];
      score = score_of<G>(qm2[k], v, bias[c_begin]);
    } else {
      const int64_t e = min(c_end, int64_t(best_chunk[k]) + kChunk);
      for (int64_t c = best_chunk[k]; c < e; ++c) {
        float v[G];
        for (int d = 0; d < G; ++d) v[d] = vectors[c * G + d];
        if (score_of<G>(qm2[k], v, bias[c]) == best[k]) {
          arg = c;
          break;
        }
      }
    }
    out_score[int64_t(blockIdx.y) * n + qi] = score;
    out_index[int64_t(blockIdx.y) * n + qi] = uint32_t(arg);
  }
}

__global__ void merge_nearest_kernel(const float* __restrict__ part_score, const uint32_t* __restrict__ part_index,
                                     int64_t n, int slices, uint32_t* __restrict__ best_index,
                                     float* __restrict__ best_score) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= n) return;
  float b = part_score[q];
  uint32_t arg = part_index[q];
  for (int s = 1; s < slices; ++s) {  // slices in ascending candidate order: strict < keeps the lowest index
    const float v = part_score[int64_t(s) * n + q];
    if (v < b) {
      b = v;
      arg = part_index[int64_t(s) * n + q];
    }
  }
  best_index[q] = arg;
  best_score[q] = b;
}

// The CPU's insert_top: an ascending list of capacity k; a score enters only below the current
// threshold (+inf until the list is full), and an equal score stays ahead of the newcomer.
__device__ __forceinline__ void insert_top(float s, uint32_t c, int k, int& filled, float* top_score,
                                           uint32_t* top_index, float& threshold) {
  int pos = filled < k ? filled : k - 1;
  while (pos > 0 && top_score[pos - 1] > s) {
    top_score[pos] = top_score[pos - 1];
    top_index[pos] = top_index[pos - 1];
    --pos;
  }
  top_score[pos] = s;
  top_index[pos] = c;
  if (filled < k) ++filled;
  if (filled == k) threshold = top_score[k - 1];
}

template <int G>
__global__ void __launch_bounds__(kTopKThreads) top_k_kernel(const float* __restrict__ vectors,
                                                             const float* __restrict__ bias, int64_t count,
                                                             const float* __restrict__ queries, int64_t n, int k,
                                                             int64_t slice_size, float* __restrict__ out_score,
                                                             uint32_t* __restrict__ out_index) {
  __shared__ __align__(16) float s_vec[kStage * G];
  __shared__ float s_bias[kStage];
  const int64_t qi = int64_t(blockIdx.x) * kTopKThreads + threadIdx.x;
  const int64_t c_begin = int64_t(blockIdx.y) * slice_size;
  const int64_t c_end = min(count, c_begin + slice_size);
  float qm2[G];
#pragma unroll
  for (int d = 0; d < G; ++d) qm2[d] = qi < n ? -2.0f * queries[qi * G + d] : 0.0f;
  float top_score[kMaxTopK];
  uint32_t top_index[kMaxTopK];
  int filled = 0;
  float threshold = kInf;
  for (int64_t stage = c_begin; stage < c_end; stage += kStage) {
    __syncthreads();
    stage_candidates<G>(vectors, bias, stage, min(c_end, stage + kStage), s_vec, s_bias);
    __syncthreads();
    const int staged = int(min(int64_t(kStage), c_end - stage));
#pragma unroll 4
    for (int c = 0; c < staged; ++c) {
      float v[G];
      load_vector<G>(s_vec + c * G, v);
      const float s = score_of<G>(qm2, v, s_bias[c]);
      if (s < threshold) insert_top(s, uint32_t(stage + c), k, filled, top_score, top_index, threshold);
    }
  }
  if (qi >= n) return;
  const int64_t base = (int64_t(blockIdx.y) * n + qi) * k;
  for (int i = 0; i < k; ++i) {
    out_score[base + i] = i < filled ? top_score[i] : kInf;
    out_index[base + i] = i < filled ? top_index[i] : 0u;
  }
}

__global__ void merge_top_k_kernel(const float* __restrict__ part_score, const uint32_t* __restrict__ part_index,
                                   int64_t n, int k, int slices, uint32_t* __restrict__ index,
                                   float* __restrict__ score) {
  const int64_t q = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= n) return;
  float top_score[kMaxTopK];
  uint32_t top_index[kMaxTopK];
  int filled = 0;
  float threshold = kInf;
  // Slices in ascending candidate order, each list ascending with ties in index order: inserting
  // them in turn gives the k smallest (score, index) pairs, as one scan over all candidates.
  for (int s = 0; s < slices; ++s) {
    const int64_t base = (int64_t(s) * n + q) * k;
    for (int i = 0; i < k; ++i) {
      const float v = part_score[base + i];
      if (v < threshold) insert_top(v, part_index[base + i], k, filled, top_score, top_index, threshold);
    }
  }
  for (int i = 0; i < k; ++i) {
    score[q * k + i] = i < filled ? top_score[i] : kInf;
    index[q * k + i] = i < filled ? top_index[i] : 0u;
  }
}

void check_set(const CandidatesView& set, int64_t n) {
  AQLM_CHECK(set.g == 4 || set.g == 8 || set.g == 16, "GPU candidate search: group size ", set.g,
             " (supported: 4, 8, 16)");
  AQLM_CHECK(set.count > 0 && set.count <= (int64_t(1) << 30), "GPU candidate search: ", set.count, " candidates");
  AQLM_CHECK(n >= 0, "GPU candidate search: ", n, " queries");
}

// Enough blocks to keep every SM busy: about four blocks per SM.
int64_t target_blocks() { return 4 * int64_t(device_properties().sm_count); }

template <int G, int QPT>
void launch_nearest(const CandidatesView& set, const float* queries, int64_t n, uint32_t* best_index,
                    float* best_score, SearchScratch& scratch) {
  const int64_t tiles = ceil_div(n, int64_t(kThreads) * QPT);
  const int64_t max_slices = ceil_div(set.count, kStage);
  const int64_t slices = std::clamp<int64_t>(ceil_div(target_blocks(), tiles), 1, std::min<int64_t>(max_slices, 65535));
  const int64_t slice_size = ceil_div(ceil_div(set.count, slices), kChunk) * kChunk;
  const int64_t used = ceil_div(set.count, slice_size);
  float* part_score = best_score;
  uint32_t* part_index = best_index;
  if (used > 1) {
    char* p = static_cast<char*>(scratch.reserve(size_t(used * n) * (sizeof(float) + sizeof(uint32_t))));
    part_score = reinterpret_cast<float*>(p);
    part_index = reinterpret_cast<uint32_t*>(p + size_t(used * n) * sizeof(float));
  }
  nearest_kernel<G, QPT><<<dim3(unsigned(tiles), unsigned(used)), kThreads>>>(set.vectors, set.bias, set.count, queries,
                                                                           n, slice_size, part_score, part_index);
  check_launch("AQLM nearest-candidate search");
  if (used > 1) {
    merge_nearest_kernel<<<unsigned(ceil_div(n, 256)), 256>>>(part_score, part_index, n, int(used), best_index,
                                                              best_score);
    check_launch("AQLM nearest-candidate merge");
  }
}

template <int G>
void nearest_for_g(const CandidatesView& set, const float* queries, int64_t n, uint32_t* best_index, float* best_score,
                   SearchScratch& scratch) {
  // Many queries per thread reuse each staged candidate from registers; with few queries
  // (beam search over small codebooks) one per thread gives more blocks.
  constexpr int kWide = G == 16 ? 4 : 8;
  const int64_t wide_blocks = ceil_div(n, int64_t(kThreads) * kWide) * ceil_div(set.count, kStage);
  if (wide_blocks >= target_blocks())
    launch_nearest<G, kWide>(set, queries, n, best_index, best_score, scratch);
  else
    launch_nearest<G, 1>(set, queries, n, best_index, best_score, scratch);
}

template <int G>
void top_k_for_g(const CandidatesView& set, const float* queries, int64_t n, int k, uint32_t* index, float* score,
                 SearchScratch& scratch) {
  const int64_t tiles = ceil_div(n, kTopKThreads);
  const int64_t max_slices = std::max<int64_t>(1, set.count / std::max<int64_t>(kStage, k));
  const int64_t slices = std::clamp<int64_t>(ceil_div(target_blocks(), tiles), 1, std::min<int64_t>(max_slices, 65535));
  const int64_t slice_size = ceil_div(ceil_div(set.count, slices), kChunk) * kChunk;
  const int64_t used = ceil_div(set.count, slice_size);
  float* part_score = score;
  uint32_t* part_index = index;
  if (used > 1) {
    char* p = static_cast<char*>(scratch.reserve(size_t(used * n * k) * (sizeof(float) + sizeof(uint32_t))));
    part_score = reinterpret_cast<float*>(p);
    part_index = reinterpret_cast<uint32_t*>(p + size_t(used * n * k) * sizeof(float));
  }
  top_k_kernel<G><<<dim3(unsigned(tiles), unsigned(used)), kTopKThreads>>>(set.vectors, set.bias, set.count, queries, n,
                                                                          k, slice_size, part_score, part_index);
  check_launch("AQLM top-k candidate search");
  if (used > 1) {
    merge_top_k_kernel<<<unsigned(ceil_div(n, 128)), 128>>>(part_score, part_index, n, k, int(used), index, score);
    check_launch("AQLM top-k candidate merge");
  }
}

}  // namespace

SearchScratch::~SearchScratch() { device_free(p_); }

void* SearchScratch::reserve(size_t bytes) {
  if (bytes <= bytes_) return p_;
  device_free(p_);
  p_ = nullptr;
  bytes_ = 0;
  p_ = device_alloc(bytes, "the candidate search's partial results");
  bytes_ = bytes;
  return p_;
}

void search_nearest_cuda(const CandidatesView& set, const float* queries, int64_t n, uint32_t* best_index,
                         float* best_score, SearchScratch& scratch) {
  check_set(set, n);
  if (n == 0) return;
  switch (set.g) {
    case 4: nearest_for_g<4>(set, queries, n, best_index, best_score, scratch); break;
    case 8: nearest_for_g<8>(set, queries, n, best_index, best_score, scratch); break;
    default: nearest_for_g<16>(set, queries, n, best_index, best_score, scratch); break;
  }
}

void search_top_k_cuda(const CandidatesView& set, const float* queries, int64_t n, int k, uint32_t* index, float* score,
                       SearchScratch& scratch) {
  check_set(set, n);
  AQLM_CHECK(k >= 1 && k <= kMaxTopK && k <= set.count, "GPU top-", k, " search among ", set.count,
             " candidates (at most ", kMaxTopK, ")");
  if (n == 0) return;
  switch (set.g) {
    case 4: top_k_for_g<4>(set, queries, n, k, index, score, scratch); break;
    case 8: top_k_for_g<8>(set, queries, n, k, index, score, scratch); break;
    default: top_k_for_g<16>(set, queries, n, k, index, score, scratch); break;
  }
}

}  // namespace aqlm::cuda
