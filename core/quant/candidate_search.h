#pragma once
// The hot loop of AQLM calibration: for each query vector q, find the candidate vectors c
// (codewords) that minimise
//
//     score(c, q) = bias[c] - 2 <q, c>
//
// k-means assignment uses bias = ||c||^2 (so the score is ||q - c||^2 - ||q||^2); the beam
// search uses bias = c^T H c with H the group's block of XTX (so the score is the change of
// the layer's output error). Scoring all candidates is a [candidates, g] x [g, queries]
// product followed by an argmin; it is done as one fused, cache-blocked AVX2 kernel so the
// score matrix never reaches memory. A CUDA backend replaces these two functions.
//
// Every score is computed as acc = bias; acc = fma(-2 q_d, c_d, acc) for d = 0..g-1, in that
// order, whichever path computes it, so results are bit-identical to candidate_score() and do
// not depend on the number of threads. Ties go to the lower candidate index.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace aqlm {

class ThreadPool;

class CandidateSet {
 public:
  CandidateSet() = default;
  // candidates: [count, g] row-major; bias: [count].
  CandidateSet(int g, int64_t count, const float* candidates, const float* bias);
  // Replaces the biases only (the beam search rescoring the same codebook for another group).
  void set_bias(const float* bias);

  int group_size() const { return g_; }
  int64_t count() const { return count_; }
  float component(int64_t c, int d) const { return components_[size_t(d) * size_t(padded_) + size_t(c)]; }
  float bias(int64_t c) const { return bias_[size_t(c)]; }

  // Layout for the kernels: component-major [g][padded], bias [padded]; the padding
  // candidates have bias +inf so they never win.
  const float* components() const { return components_.data(); }
  const float* biases() const { return bias_.data(); }
  int64_t padded_count() const { return padded_; }

 private:
  int g_ = 0;
  int64_t count_ = 0, padded_ = 0;
  std::vector<float> components_, bias_;
};

// The score of candidate c for query q[g], computed exactly as the kernels do (reference for tests).
float candidate_score(const CandidateSet& set, int64_t c, const float* q);

// For each of n queries (rows of queries[n, g]) the best candidate and its score.
// Runs on `pool` over fixed tiles of queries.
void search_nearest(ThreadPool& pool, const CandidateSet& set, const float* queries, int64_t n, uint32_t* best_index,
                    float* best_score);

// For each query the k best candidates in ascending score (ties: lower index first):
// index[n, k], score[n, k]. k <= count.
void search_top_k(ThreadPool& pool, const CandidateSet& set, const float* queries, int64_t n, int k, uint32_t* index, float* score);

}  // namespace aqlm
