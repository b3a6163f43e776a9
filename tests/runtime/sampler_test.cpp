#include "core/runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/common/error.h"

namespace aqlm {
namespace {

// log-probabilities of a crafted 5-token distribution: 0.4, 0.3, 0.15, 0.1, 0.05.
const std::vector<float> kProbs = {0.4f, 0.3f, 0.15f, 0.1f, 0.05f};
std::vector<float> crafted_logits() {
  std::vector<float> l;
  for (float p : kProbs) l.push_back(std::log(p));
  return l;
}

int count_kept(const SamplerConfig& c, const std::vector<float>& logits, const std::vector<int32_t>& history = {}) {
  const auto p = Sampler(c).probabilities(logits, history);
  int n = 0;
  for (float v : p) n += v > 0;
  return n;
}

TEST(Sampler, TopKKeepsKAndItsTies) {
  SamplerConfig c;
  c.top_k = 2;
  EXPECT_EQ(count_kept(c, crafted_logits()), 2);
  c.top_k = 4;
  EXPECT_EQ(count_kept(c, crafted_logits()), 4);
  c.top_k = 50;  // more than the vocabulary: no-op
  EXPECT_EQ(count_kept(c, crafted_logits()), 5);
  c.top_k = 2;  // HF keeps every token not below the k-th score
  EXPECT_EQ(count_kept(c, {1.0f, 2.0f, 2.0f, 2.0f, 0.0f}), 3);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  SamplerConfig c;
  c.top_p = 0.75f;  // 0.4 + 0.3 = 0.7 < 0.75, so the third token is needed
  EXPECT_EQ(count_kept(c, crafted_logits()), 3);
  c.top_p = 0.69f;  // 0.4 + 0.3 reaches it
  EXPECT_EQ(count_kept(c, crafted_logits()), 2);
  c.top_p = 0.35f;  // the top token alone
  EXPECT_EQ(count_kept(c, crafted_logits()), 1);
  c.top_p = 0.96f;  // everything but the 0.05 tail... 0.95 < 0.96, so all five
  EXPECT_EQ(count_kept(c, crafted_logits()), 5);
  c.top_p = 0.94f;
  EXPECT_EQ(count_kept(c, crafted_logits()), 4);
}

TEST(Sampler, TopPAppliesAfterTopKOnRenormalisedMass) {
  SamplerConfig c;
  c.top_k = 4;      // 0.4, 0.3, 0.15, 0.1 renormalised by 0.95: 0.421, 0.316, 0.158, 0.105
  c.top_p = 0.75f;  // 0.421 + 0.316 = 0.737 < 0.75 -> three tokens
  EXPECT_EQ(count_kept(c, crafted_logits()), 3);
  c.top_p = 0.73f;
  EXPECT_EQ(count_kept(c, crafted_logits()), 2);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheTop) {
  SamplerConfig c;
  c.min_p = 0.3f;  // threshold 0.12: 0.4, 0.3, 0.15 stay
  EXPECT_EQ(count_kept(c, crafted_logits()), 3);
  c.min_p = 0.5f;  // threshold 0.2
  EXPECT_EQ(count_kept(c, crafted_logits()), 2);
  c.min_p = 0.1f;  // threshold 0.04: all
  EXPECT_EQ(count_kept(c, crafted_logits()), 5);
}

TEST(Sampler, KeptProbabilitiesAreRenormalised) {
  SamplerConfig c;
  c.top_p = 0.75f;
  const auto p = Sampler(c).probabilities(crafted_logits(), {});
  EXPECT_NEAR(p[0], 0.4 / 0.85, 1e-6);
  EXPECT_NEAR(p[1], 0.3 / 0.85, 1e-6);
  EXPECT_NEAR(p[2], 0.15 / 0.85, 1e-6);
  EXPECT_EQ(p[3], 0.0f);
}

TEST(Sampler, TemperatureScalesTheLogits) {
  SamplerConfig c;
  c.temperature = 2.0f;
  const auto logits = crafted_logits();
  const auto p = Sampler(c).probabilities(logits, {});
  double z = 0;
  for (float l : logits) z += std::exp(l / 2.0);
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(p[i], std::exp(logits[i] / 2.0) / z, 1e-6);
}

TEST(Sampler, RepetitionPenaltyAsHuggingFaceDefinesIt) {
  // Seen tokens: a positive logit is divided by the penalty, a negative one multiplied;
  // each seen id once however often it occurs.
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  const std::vector<int32_t> history = {0, 1, 1, 4, 1};
  apply_repetition_penalty(logits, history, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f, 0.0f}));
  // In greedy decoding the penalty can change the choice.
  SamplerConfig c;
  c.temperature = 0;
  c.repetition_penalty = 1.6f;
  const std::vector<float> two = {1.5f, 1.0f};
  EXPECT_EQ(Sampler(c).sample(two, std::vector<int32_t>{}), 0);
  EXPECT_EQ(Sampler(c).sample(two, std::vector<int32_t>{0}), 1);  // 1.5 / 1.6 < 1.0
}

std::vector<float> random_logits(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> l(static_cast<size_t>(n));
  for (auto& v : l) v = d(rng);
  return l;
}

TEST(Sampler, TopKOneAndTemperatureZeroAreGreedy) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto logits = random_logits(1000, seed);
    const int32_t argmax = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    SamplerConfig k1;
    k1.top_k = 1;
    k1.seed = seed;
    SamplerConfig t0;
    t0.temperature = 0;
    EXPECT_EQ(Sampler(k1).sample(logits, {}), argmax);
    EXPECT_EQ(Sampler(t0).sample(logits, {}), argmax);
  }
}

TEST(Sampler, SameSeedSameSequenceOtherSeedAnother) {
  SamplerConfig c;
  c.temperature = 1.5f;
  c.top_p = 0.95f;
  c.seed = 42;
  const auto logits = random_logits(500, 7);
  Sampler a(c), b(c);
  c.seed = 43;
  Sampler other(c);
  std::vector<int32_t> sa, sb, so;
  for (int i = 0; i < 50; ++i) {
    sa.push_back(a.sample(logits, {}));
    sb.push_back(b.sample(logits, {}));
    so.push_back(other.sample(logits, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, so);
  a.reseed(42);
  EXPECT_EQ(a.sample(logits, {}), sa[0]);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplerConfig c;
  c.seed = 3;
  Sampler s(c);
  const auto logits = crafted_logits();
  std::vector<int> counts(5, 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[size_t(s.sample(logits, {}))];
  for (size_t i = 0; i < 5; ++i) {
    const double sigma = std::sqrt(n * kProbs[i] * (1 - kProbs[i]));
    EXPECT_NEAR(counts[i], n * kProbs[i], 4 * sigma) << i;  // seeded: deterministic, 4 sigma margin
  }
}

TEST(Sampler, LargeVocabularyTopPNeedsTheFullSort) {
  // A flat distribution over 5000 tokens: top-p 0.9 keeps 4500 of them, beyond the partial sort.
  SamplerConfig c;
  c.top_p = 0.9f;
  std::vector<float> flat(5000, 0.0f);
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = 1e-4f * float(i % 7);  // nearly flat, not all equal
  const int kept = count_kept(c, flat);
  EXPECT_GE(kept, 4490);
  EXPECT_LE(kept, 4510);
}

TEST(Sampler, RejectsBadSettings) {
  auto err = [](SamplerConfig c) {
    try {
      Sampler s(c);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  SamplerConfig c;
  c.temperature = -1;
  EXPECT_EQ(err(c), "temperature -1 must be >= 0");
  c = {};
  c.top_p = 0;
  EXPECT_EQ(err(c), "top-p 0 must be in (0, 1]");
  c = {};
  c.min_p = 1.5f;
  EXPECT_EQ(err(c), "min-p 1.5 must be in [0, 1]");
  c = {};
  c.repetition_penalty = 0;
  EXPECT_EQ(err(c), "repetition penalty 0 must be > 0");
  c = {};
  c.top_k = -2;
  EXPECT_EQ(err(c), "top-k -2 must be >= 0");
}

}  // namespace
}  // namespace aqlm
