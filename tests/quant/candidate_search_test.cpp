#include "core/quant/candidate_search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/quant_random.h"

namespace aqlm {
namespace {

struct Problem {
  std::vector<float> candidates, bias, queries;
};

Problem random_problem(int g, int64_t count, int64_t n, uint64_t seed) {
  QuantRandom rng(seed);
  Problem p;
  p.candidates.resize(size_t(count * g));
  for (float& v : p.candidates) v = float(rng.normal());
  p.bias.resize(size_t(count));
  for (int64_t c = 0; c < count; ++c) {
    float s = 0;
    for (int d = 0; d < g; ++d) s += p.candidates[size_t(c * g + d)] * p.candidates[size_t(c * g + d)];
    p.bias[size_t(c)] = s;
  }
  p.queries.resize(size_t(n * g));
  for (float& v : p.queries) v = float(rng.normal());
  return p;
}

// The reference: every score by candidate_score (one fma chain), stable sort, first k.
std::vector<std::pair<float, uint32_t>> reference_top(const CandidateSet& set, const float* q, int k) {
  std::vector<std::pair<float, uint32_t>> all;
  for (int64_t c = 0; c < set.count(); ++c) all.push_back({candidate_score(set, c, q), uint32_t(c)});
  std::stable_sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first < b.first; });
  all.resize(size_t(k));
  return all;
}

TEST(CandidateSearch, ScoreIsTheBiasMinusTwiceTheDotProduct) {
  const std::vector<float> cand = {1, 2, 3, -1, 0.5f, 4};  // two candidates of length 3
  const std::vector<float> bias = {10, -2};
  const CandidateSet set(3, 2, cand.data(), bias.data());
  const float q[3] = {0.5f, -1, 2};
  // 10 - 2*(0.5 - 2 + 6) = 1;  -2 - 2*(-0.5 - 0.5 + 8) = -16  (exact in float)
  EXPECT_EQ(candidate_score(set, 0, q), 1.0f);
  EXPECT_EQ(candidate_score(set, 1, q), -16.0f);
}

// Nearest candidate: exactly the reference's index and score, for the AVX2 group sizes
// (4, 8, 16) and the portable path (3), with counts that are not multiples of the 8-wide
// vectors, of the 128-candidate blocks or of the 1024-candidate chunks.
TEST(CandidateSearch, NearestEqualsBruteForce) {
  ThreadPool pool(3);
  for (int g : {3, 4, 8, 16}) {
    for (int64_t count : {1, 7, 129, 1500, 5000}) {
      const int64_t n = 70;
      Problem p = random_problem(g, count, n, uint64_t(g * 100000 + count));
      const CandidateSet set(g, count, p.candidates.data(), p.bias.data());
      std::vector<uint32_t> index(static_cast<size_t>(n));
      std::vector<float> score(static_cast<size_t>(n));
      search_nearest(pool, set, p.queries.data(), n, index.data(), score.data());
      for (int64_t q = 0; q < n; ++q) {
        const auto ref = reference_top(set, &p.queries[size_t(q * g)], 1);
        ASSERT_EQ(index[size_t(q)], ref[0].second) << "g " << g << " count " << count << " query " << q;
        ASSERT_EQ(score[size_t(q)], ref[0].first);
      }
    }
  }
}

TEST(CandidateSearch, TiesGoToTheLowerIndex) {
  ThreadPool pool(2);
  // 300 candidates where 17, 150 and 299 are the same vector with the same bias; queries at it.
  Problem p = random_problem(8, 300, 4, 5);
  for (int64_t c : {150, 299})
    for (int d = 0; d < 8; ++d) p.candidates[size_t(c * 8 + d)] = p.candidates[size_t(17 * 8 + d)];
  p.bias[150] = p.bias[299] = p.bias[17];
  for (int q = 0; q < 4; ++q)
    for (int d = 0; d < 8; ++d) p.queries[size_t(q * 8 + d)] = p.candidates[size_t(17 * 8 + d)];
  const CandidateSet set(8, 300, p.candidates.data(), p.bias.data());
  std::vector<uint32_t> index(4), top_index(12);
  std::vector<float> score(4), top_score(12);
  search_nearest(pool, set, p.queries.data(), 4, index.data(), score.data());
  search_top_k(pool, set, p.queries.data(), 4, 3, top_index.data(), top_score.data());
  for (int q = 0; q < 4; ++q) {
    EXPECT_EQ(index[size_t(q)], 17u);
    EXPECT_EQ(top_index[size_t(q * 3)], 17u);
    EXPECT_EQ(top_index[size_t(q * 3 + 1)], 150u);
    EXPECT_EQ(top_index[size_t(q * 3 + 2)], 299u);
  }
}

TEST(CandidateSearch, TopKEqualsSortedBruteForce) {
  ThreadPool pool(2);
  for (int g : {3, 4, 8, 16}) {
    for (int64_t count : {9, 256, 1000}) {
      for (int k : {1, 2, 8}) {
        const int64_t n = 40;
        Problem p = random_problem(g, count, n, uint64_t(count * 31 + g * 7 + k));
        const CandidateSet set(g, count, p.candidates.data(), p.bias.data());
        std::vector<uint32_t> index(static_cast<size_t>(n * k));
        std::vector<float> score(static_cast<size_t>(n * k));
        search_top_k(pool, set, p.queries.data(), n, k, index.data(), score.data());
        for (int64_t q = 0; q < n; ++q) {
          const auto ref = reference_top(set, &p.queries[size_t(q * g)], k);
          for (int r = 0; r < k; ++r) {
            ASSERT_EQ(index[size_t(q * k + r)], ref[size_t(r)].second) << "g " << g << " count " << count << " k " << k;
            ASSERT_EQ(score[size_t(q * k + r)], ref[size_t(r)].first);
          }
        }
      }
    }
  }
}

TEST(CandidateSearch, SameResultWhateverTheThreadCount) {
  Problem p = random_problem(8, 3000, 333, 9);
  CandidateSet set(8, 3000, p.candidates.data(), p.bias.data());
  std::vector<uint32_t> a(333), b(333);
  std::vector<float> sa(333), sb(333);
  ThreadPool one(1), four(4);
  search_nearest(one, set, p.queries.data(), 333, a.data(), sa.data());
  search_nearest(four, set, p.queries.data(), 333, b.data(), sb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(sa, sb);
  // New biases change the answer (the beam search reuses a set for every group).
  std::vector<float> bias(3000, 0.0f);
  bias[42] = -1e6f;
  set.set_bias(bias.data());
  search_nearest(one, set, p.queries.data(), 333, a.data(), sa.data());
  for (uint32_t i : a) EXPECT_EQ(i, 42u);
}

TEST(CandidateSearch, RejectsBadArguments) {
  ThreadPool pool(1);
  Problem p = random_problem(8, 10, 1, 1);
  const CandidateSet set(8, 10, p.candidates.data(), p.bias.data());
  std::vector<uint32_t> index(11);
  std::vector<float> score(11);
  EXPECT_THROW(search_top_k(pool, set, p.queries.data(), 1, 11, index.data(), score.data()), Error);
  EXPECT_THROW(search_top_k(pool, set, p.queries.data(), 1, 0, index.data(), score.data()), Error);
  EXPECT_THROW(CandidateSet(8, 0, p.candidates.data(), p.bias.data()), Error);
}

}  // namespace
}  // namespace aqlm
