#pragma once
// The hot loop of AQLM calibration on the GPU: for each query q [g] find the candidates c that
// minimise   score(c, q) = bias[c] - 2 <q, c>   (core/quant/candidate_search.h explains both uses:
// k-means assignment with bias = ||c||^2, beam search with bias = c^T H c).
//
// Each score is computed exactly as the CPU kernels do it -- acc = bias; acc = fma(-2 q_d, c_d, acc)
// for d = 0..g-1 -- in fp32 on the CUDA cores, so the scores, the argmin and the top-k are
// bit-identical to core/quant/candidate_search.cpp (ties go to the lower candidate index). The
// products are too short (g = 4..16) for tensor cores to pay, and their 10-bit TF32 inputs would
// change which of two near-equal codewords wins.
//
// All pointers are device pointers; the calls are asynchronous on stream 0 and check the launch.
#include <cstdint>

namespace aqlm::cuda {

struct CandidatesView {
  int g = 0;                     // 4, 8 or 16
  int64_t count = 0;             // candidates
  const float* vectors = nullptr;  // [count, g] row-major (a codebook)
  const float* bias = nullptr;     // [count]
};

// Scratch for the split-candidate searches (the partial results of each candidate slice);
// grows on demand, owned by the caller so repeated searches allocate nothing.
class SearchScratch {
 public:
  SearchScratch() = default;
  ~SearchScratch();
  SearchScratch(const SearchScratch&) = delete;
  SearchScratch& operator=(const SearchScratch&) = delete;
  void* reserve(size_t bytes);

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// best_index[n], best_score[n]: the nearest candidate of each of the n queries [n, g].
void search_nearest_cuda(const CandidatesView& set, const float* queries, int64_t n, uint32_t* best_index,
                         float* best_score, SearchScratch& scratch);

// index[n, k], score[n, k]: the k best candidates of each query in ascending score (ties: lower
// index first), 1 <= k <= min(64, count).
void search_top_k_cuda(const CandidatesView& set, const float* queries, int64_t n, int k, uint32_t* index,
                       float* score, SearchScratch& scratch);

}  // namespace aqlm::cuda
