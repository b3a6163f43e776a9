// The GPU candidate search against a scalar reference with the CPU kernels' exact arithmetic
// (acc = bias; acc = fma(-2 q_d, c_d, acc) for d in order; ties to the lower index, as
// core/quant/candidate_search.cpp documents): the results must be bit-identical, on fresh random
// inputs, odd counts (not multiples of the 32-candidate chunks or 256-candidate stages), few and
// many queries (one candidate slice or many, then the merge), planted ties, +inf biases, and
// outputs poisoned before every run. Without a GPU the tests skip with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "core/common/error.h"
#include "kernels/cuda/quant_cuda_common.h"
#include "kernels/cuda/quant_search_cuda.h"

namespace aqlm::cuda {
namespace {

#define AQLM_REQUIRE_GPU() \
  if (device_count() == 0) GTEST_SKIP() << no_device_reason()

float reference_score(const std::vector<float>& cand, const std::vector<float>& bias, int g, int64_t c, const float* q) {
  float acc = bias[size_t(c)];
  for (int d = 0; d < g; ++d) acc = std::fma(-2.0f * q[d], cand[size_t(c * g + d)], acc);
  return acc;
}

struct Problem {
  int g = 8;
  int64_t count = 0, n = 0;
  std::vector<float> cand, bias, queries;
};

// Candidates and queries of a similar scale (k-means / beam-search-like); every 7th candidate
// repeats an earlier one so equal scores occur and the tie rule is exercised.
Problem make_problem(int g, int64_t count, int64_t n, uint64_t seed, bool some_infinite = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p;
  p.g = g;
  p.count = count;
  p.n = n;
  p.cand.resize(size_t(count * g));
  p.bias.resize(size_t(count));
  for (auto& v : p.cand) v = normal(rng);
  for (int64_t c = 7; c < count; c += 7)
    for (int d = 0; d < g; ++d) p.cand[size_t(c * g + d)] = p.cand[size_t((c / 2) * g + d)];
  for (int64_t c = 0; c < count; ++c) {
    float s = 0;
    for (int d = 0; d < g; ++d) s = std::fma(p.cand[size_t(c * g + d)], p.cand[size_t(c * g + d)], s);
    p.bias[size_t(c)] = s;
    if (some_infinite && c % 5 == 1) p.bias[size_t(c)] = std::numeric_limits<float>::infinity();
  }
  p.queries.resize(size_t(n * g));
  for (auto& v : p.queries) v = normal(rng);
  return p;
}

struct OnDevice {
  DeviceArray<float> cand, bias, queries;
  SearchScratch scratch;
  CandidatesView set;
  explicit OnDevice(const Problem& p)
      : cand(p.cand.size(), "test"), bias(p.bias.size(), "test"), queries(std::max<size_t>(p.queries.size(), 1), "test") {
    cand.upload(p.cand);
    bias.upload(p.bias);
    if (!p.queries.empty()) queries.upload(p.queries);
    set = CandidatesView{p.g, p.count, cand.data(), bias.data()};
  }
};

using Shape = std::tuple<int, int64_t, int64_t>;  // g, candidates, queries

class SearchCuda : public ::testing::TestWithParam<Shape> {};

TEST_P(SearchCuda, NearestMatchesTheCpuArithmeticExactly) {
  AQLM_REQUIRE_GPU();
  const auto [g, count, n] = GetParam();
  for (uint64_t seed : {1u, 2u}) {
    const Problem p = make_problem(g, count, n, seed * 1000 + uint64_t(count), seed == 2);
    OnDevice dev(p);
    DeviceArray<uint32_t> index(size_t(n), "test");
    DeviceArray<float> score(size_t(n), "test");
    index.poison();
    score.poison();
    search_nearest_cuda(dev.set, dev.queries.data(), n, index.data(), score.data(), dev.scratch);
    const auto got_index = index.to_host();
    const auto got_score = score.to_host();
    int64_t ties = 0;
    for (int64_t q = 0; q < n; ++q) {
      float best = std::numeric_limits<float>::infinity();
      int64_t arg = 0, equal = 0;
      for (int64_t c = 0; c < count; ++c) {
        const float s = reference_score(p.cand, p.bias, g, c, &p.queries[size_t(q * g)]);
        if (s < best) {
          best = s;
          arg = c;
          equal = 0;
        } else if (s == best) {
          ++equal;
        }
      }
      ties += equal > 0;
      ASSERT_EQ(got_index[size_t(q)], uint32_t(arg)) << "query " << q << " g " << g << " count " << count;
      ASSERT_EQ(got_score[size_t(q)], best) << "query " << q;
    }
    if (count >= 64 && n >= 100) EXPECT_GT(ties, 0) << "the planted duplicate candidates should produce equal best scores";
  }
}

TEST_P(SearchCuda, TopKMatchesTheCpuArithmeticExactly) {
  AQLM_REQUIRE_GPU();
  const auto [g, count, n] = GetParam();
  for (int k : {1, 3, 8, 17}) {
    if (k > count) continue;
    const Problem p = make_problem(g, count, n, 77 + uint64_t(k) * 13 + uint64_t(count));
    OnDevice dev(p);
    DeviceArray<uint32_t> index(size_t(n * k), "test");
    DeviceArray<float> score(size_t(n * k), "test");
    index.poison();
    score.poison();
    search_top_k_cuda(dev.set, dev.queries.data(), n, k, index.data(), score.data(), dev.scratch);
    const auto got_index = index.to_host();
    const auto got_score = score.to_host();
    std::vector<std::pair<float, int64_t>> all(static_cast<size_t>(count));
    for (int64_t q = 0; q < n; ++q) {
      for (int64_t c = 0; c < count; ++c) all[size_t(c)] = {reference_score(p.cand, p.bias, g, c, &p.queries[size_t(q * g)]), c};
      std::partial_sort(all.begin(), all.begin() + k, all.end());  // (score, index): ties to the lower index
      for (int i = 0; i < k; ++i) {
        ASSERT_EQ(got_index[size_t(q * k + i)], uint32_t(all[size_t(i)].second)) << "query " << q << " rank " << i << " k " << k;
        ASSERT_EQ(got_score[size_t(q * k + i)], all[size_t(i)].first) << "query " << q << " rank " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SearchCuda,
                         ::testing::Values(Shape{8, 256, 4096}, Shape{8, 256, 37}, Shape{8, 65536, 300},
                                           Shape{4, 1000, 5000}, Shape{16, 333, 2500}, Shape{8, 4096, 20000},
                                           Shape{4, 17, 9}, Shape{16, 2048, 1}),
                         [](const ::testing::TestParamInfo<Shape>& i) {
                           return "g" + std::to_string(std::get<0>(i.param)) + "_c" + std::to_string(std::get<1>(i.param)) +
                                  "_n" + std::to_string(std::get<2>(i.param));
                         });

// Enough queries that each thread keeps several queries in registers (the path k-means takes on
// whole layers): the same results as one query per thread.
TEST(SearchCudaWide, ManyQueriesPerThreadGiveTheSameNearest) {
  AQLM_REQUIRE_GPU();
  for (const auto& [g, count, n] : {std::tuple<int, int64_t, int64_t>{8, 4096, 70001}, {16, 4096, 40001}, {4, 300, 600001}}) {
    const Problem p = make_problem(g, count, n, 4242 + uint64_t(g));
    OnDevice dev(p);
    DeviceArray<uint32_t> index(size_t(n), "test");
    DeviceArray<float> score(size_t(n), "test");
    index.poison();
    score.poison();
    search_nearest_cuda(dev.set, dev.queries.data(), n, index.data(), score.data(), dev.scratch);
    const auto got_index = index.to_host();
    const auto got_score = score.to_host();
    for (int64_t q = 0; q < n; q += (q % 7 == 0 ? 1 : 13)) {  // a spread sample of the queries
      float best = std::numeric_limits<float>::infinity();
      int64_t arg = 0;
      for (int64_t c = 0; c < count; ++c) {
        const float s = reference_score(p.cand, p.bias, g, c, &p.queries[size_t(q * g)]);
        if (s < best) {
          best = s;
          arg = c;
        }
      }
      ASSERT_EQ(got_index[size_t(q)], uint32_t(arg)) << "query " << q << " g " << g;
      ASSERT_EQ(got_score[size_t(q)], best) << "query " << q << " g " << g;
    }
  }
}

TEST(SearchCudaErrors, BadArgumentsAreOneLineErrors) {
  AQLM_REQUIRE_GPU();
  const Problem p = make_problem(8, 16, 4, 5);
  OnDevice dev(p);
  DeviceArray<uint32_t> index(64, "test");
  DeviceArray<float> score(64, "test");
  CandidatesView bad = dev.set;
  bad.g = 6;
  try {
    search_nearest_cuda(bad, dev.queries.data(), 4, index.data(), score.data(), dev.scratch);
    FAIL() << "group size 6 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group size 6"), std::string::npos) << e.what();
  }
  try {
    search_top_k_cuda(dev.set, dev.queries.data(), 4, 17, index.data(), score.data(), dev.scratch);
    FAIL() << "top-17 of 16 candidates was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top-17"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aqlm::cuda
