#include "core/quant/candidate_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/common/error.h"
#include "core/common/thread_pool.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AQLM_SEARCH_AVX2 1
#include "kernels/cpu/cpu_features.h"
#endif

namespace aqlm {

namespace {
constexpr int64_t kQueryTile = 32;        // queries of one parallel task
constexpr int64_t kCandidateBlock = 128;  // candidates per running-minimum block
// Candidates a query tile scans while they stay in L1: about 16 KiB of components and biases.
template <int G>
constexpr int64_t kCandidateChunk = std::max<int64_t>(kCandidateBlock, 4096 / (G + 1) / kCandidateBlock * kCandidateBlock);
constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t round_up8(int64_t n) { return (n + 7) / 8 * 8; }

// Inserts (s, c) into the ascending list top[0..filled) of capacity k; an equal score stays
// ahead of the newcomer (candidates arrive in ascending index order).
inline void insert_top(float s, uint32_t c, int k, int& filled, float* top_score, uint32_t* top_index) {
  if (filled == k && !(s < top_score[k - 1])) return;
  int pos = filled < k ? filled : k - 1;  // the slot that frees up (the last one drops out when full)
  while (pos > 0 && top_score[pos - 1] > s) {
    top_score[pos] = top_score[pos - 1];
    top_index[pos] = top_index[pos - 1];
    --pos;
  }
  top_score[pos] = s;
  top_index[pos] = c;
  if (filled < k) ++filled;
}

// ---- portable path (also what non-x86 builds run); the same arithmetic as the AVX2 path.
void nearest_scalar(const CandidateSet& set, const float* queries, int64_t q0, int64_t q1, uint32_t* best_index,
                    float* best_score) {
  const int g = set.group_size();
  for (int64_t q = q0; q < q1; ++q) {
    float best = kInf;
    int64_t arg = 0;
    for (int64_t c = 0; c < set.count(); ++c) {
      const float s = candidate_score(set, c, queries + q * g);
      if (s < best) {
        best = s;
        arg = c;
      }
    }
    best_index[q] = uint32_t(arg);
    best_score[q] = best;
  }
}

void top_k_scalar(const CandidateSet& set, const float* queries, int64_t q0, int64_t q1, int k, uint32_t* index,
                  float* score) {
  const int g = set.group_size();
  for (int64_t q = q0; q < q1; ++q) {
    int filled = 0;
    for (int64_t c = 0; c < set.count(); ++c)
      insert_top(candidate_score(set, c, queries + q * g), uint32_t(c), k, filled, score + q * k, index + q * k);
  }
}

#ifdef AQLM_SEARCH_AVX2
inline float horizontal_min(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

template <int G>
inline __m256 score8(const __m256* qv, const float* comp, const float* bias, int64_t stride, int64_t c) {
  __m256 acc = _mm256_loadu_ps(bias + c);
  for (int d = 0; d < G; ++d) acc = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(comp + d * stride + c), acc);
  return acc;
}

template <int G>
inline void load_query(const float* q, __m256* qv) {
  for (int d = 0; d < G; ++d) qv[d] = _mm256_set1_ps(-2.0f * q[d]);
}

template <int G>
void nearest_avx2(const CandidateSet& set, const float* queries, int64_t q0, int64_t q1, uint32_t* best_index,
                  float* best_score) {
  const int64_t P = set.padded_count();
  const float* comp = set.components();
  const float* bias = set.biases();
  float best[kQueryTile];
  int64_t best_block[kQueryTile];
  for (int64_t q = q0; q < q1; ++q) {
    best[q - q0] = kInf;
    best_block[q - q0] = -1;
  }
  __m256 qv[G];
  for (int64_t cs = 0; cs < P; cs += kCandidateChunk<G>) {
    const int64_t ce = std::min(P, cs + kCandidateChunk<G>);
    for (int64_t q = q0; q < q1; ++q) {
      load_query<G>(queries + q * G, qv);
      float b = best[q - q0];
      int64_t bb = best_block[q - q0];
      for (int64_t bs = cs; bs < ce; bs += kCandidateBlock) {
        const int64_t be = std::min(ce, bs + kCandidateBlock);
        // Four independent candidate vectors per iteration: their fma chains overlap
        // (min is exact, so the order of the minima does not change the result).
        __m256 vmin0 = _mm256_set1_ps(kInf), vmin1 = vmin0, vmin2 = vmin0, vmin3 = vmin0;
        int64_t c = bs;
        for (; c + 32 <= be; c += 32) {
          __m256 a0 = _mm256_loadu_ps(bias + c), a1 = _mm256_loadu_ps(bias + c + 8);
          __m256 a2 = _mm256_loadu_ps(bias + c + 16), a3 = _mm256_loadu_ps(bias + c + 24);
          for (int d = 0; d < G; ++d) {
            const float* cd = comp + d * P + c;
            a0 = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(cd), a0);
            a1 = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(cd + 8), a1);
            a2 = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(cd + 16), a2);
            a3 = _mm256_fmadd_ps(qv[d], _mm256_loadu_ps(cd + 24), a3);
          }
          vmin0 = _mm256_min_ps(vmin0, a0);
          vmin1 = _mm256_min_ps(vmin1, a1);
          vmin2 = _mm256_min_ps(vmin2, a2);
          vmin3 = _mm256_min_ps(vmin3, a3);
        }
        for (; c < be; c += 8) vmin0 = _mm256_min_ps(vmin0, score8<G>(qv, comp, bias, P, c));
        const float m = horizontal_min(_mm256_min_ps(_mm256_min_ps(vmin0, vmin1), _mm256_min_ps(vmin2, vmin3)));
        if (m < b) {
          b = m;
          bb = bs;
        }
      }
      best[q - q0] = b;
      best_block[q - q0] = bb;
    }
  }
  // Rescan the winning block of each query for the first candidate reaching its minimum.
  alignas(32) float lane[8];
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t bb = best_block[q - q0];
    if (bb < 0) {  // every score was +inf or NaN: report candidate 0 as it scores
      best_index[q] = 0;
      best_score[q] = candidate_score(set, 0, queries + q * G);
      continue;
    }
    load_query<G>(queries + q * G, qv);
    const int64_t be = std::min(P, bb + kCandidateBlock);
    int64_t arg = -1;
    for (int64_t c = bb; c < be && arg < 0; c += 8) {
      _mm256_store_ps(lane, score8<G>(qv, comp, bias, P, c));
      for (int l = 0; l < 8; ++l)
        if (lane[l] == best[q - q0]) {
          arg = c + l;
          break;
        }
    }
    best_index[q] = uint32_t(arg);
    best_score[q] = best[q - q0];
  }
}

template <int G>
void top_k_avx2(const CandidateSet& set, const float* queries, int64_t q0, int64_t q1, int k, uint32_t* index,
                float* score) {
  const int64_t P = set.padded_count();
  const float* comp = set.components();
  const float* bias = set.biases();
  __m256 qv[G];
  alignas(32) float lane[8];
  for (int64_t q = q0; q < q1; ++q) {
    load_query<G>(queries + q * G, qv);
    float* top_score = score + q * k;
    uint32_t* top_index = index + q * k;
    int filled = 0;
    float threshold = kInf;
    __m256 tv = _mm256_set1_ps(kInf);
    for (int64_t c = 0; c < P; c += 8) {
      const __m256 acc = score8<G>(qv, comp, bias, P, c);
      int mask = _mm256_movemask_ps(_mm256_cmp_ps(acc, tv, _CMP_LT_OQ));
      if (!mask) continue;
      _mm256_store_ps(lane, acc);
      for (int l = 0; l < 8; ++l) {
        if (!(mask >> l & 1) || c + l >= set.count()) continue;
        insert_top(lane[l], uint32_t(c + l), k, filled, top_score, top_index);
        if (filled == k) threshold = top_score[k - 1];
      }
      tv = _mm256_set1_ps(threshold);
    }
  }
}

using NearestFn = void (*)(const CandidateSet&, const float*, int64_t, int64_t, uint32_t*, float*);
using TopKFn = void (*)(const CandidateSet&, const float*, int64_t, int64_t, int, uint32_t*, float*);

NearestFn nearest_kernel(int g) {
  switch (g) {
    case 4: return nearest_avx2<4>;
    case 8: return nearest_avx2<8>;
    case 16: return nearest_avx2<16>;
    default: return nearest_scalar;
  }
}
TopKFn top_k_kernel(int g) {
  switch (g) {
    case 4: return top_k_avx2<4>;
    case 8: return top_k_avx2<8>;
    case 16: return top_k_avx2<16>;
    default: return top_k_scalar;
  }
}
void check_cpu() {
  static const bool ok = cpu_features().avx2 && cpu_features().fma;
  AQLM_CHECK(ok, "the AQLM quantizer was built for x86-64-v3 and needs a CPU with AVX2 and FMA");
}
#else
using NearestFn = void (*)(const CandidateSet&, const float*, int64_t, int64_t, uint32_t*, float*);
using TopKFn = void (*)(const CandidateSet&, const float*, int64_t, int64_t, int, uint32_t*, float*);
NearestFn nearest_kernel(int) { return nearest_scalar; }
TopKFn top_k_kernel(int) { return top_k_scalar; }
void check_cpu() {}
#endif

}  // namespace

CandidateSet::CandidateSet(int g, int64_t count, const float* candidates, const float* bias)
    : g_(g), count_(count), padded_(round_up8(count)) {
  AQLM_CHECK(g > 0 && count > 0, "candidate set of ", count, " vectors of length ", g);
  components_.assign(size_t(g) * size_t(padded_), 0.0f);
  for (int64_t c = 0; c < count; ++c)
    for (int d = 0; d < g; ++d) components_[size_t(d) * size_t(padded_) + size_t(c)] = candidates[c * g + d];
  bias_.assign(size_t(padded_), kInf);
  set_bias(bias);
}

void CandidateSet::set_bias(const float* bias) { std::copy(bias, bias + count_, bias_.begin()); }

float candidate_score(const CandidateSet& set, int64_t c, const float* q) {
  float acc = set.bias(c);
  for (int d = 0; d < set.group_size(); ++d) acc = std::fma(-2.0f * q[d], set.component(c, d), acc);
  return acc;
}

void search_nearest(ThreadPool& pool, const CandidateSet& set, const float* queries, int64_t n, uint32_t* best_index,
                    float* best_score) {
  check_cpu();
  const NearestFn kernel = nearest_kernel(set.group_size());
  const int64_t tiles = (n + kQueryTile - 1) / kQueryTile;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t q0 = int64_t(t) * kQueryTile, q1 = std::min(n, q0 + kQueryTile);
      kernel(set, queries, q0, q1, best_index, best_score);
    }
  });
}

void search_top_k(ThreadPool& pool, const CandidateSet& set, const float* queries, int64_t n, int k, uint32_t* index, float* score) {
  check_cpu();
  AQLM_CHECK(k >= 1 && k <= set.count(), "top-", k, " search among ", set.count(), " candidates");
  const TopKFn kernel = top_k_kernel(set.group_size());
  const int64_t tiles = (n + kQueryTile - 1) / kQueryTile;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (size_t t = t0; t < t1; ++t) {
      const int64_t q0 = int64_t(t) * kQueryTile, q1 = std::min(n, q0 + kQueryTile);
      kernel(set, queries, q0, q1, k, index, score);
    }
  });
}

}  // namespace aqlm
