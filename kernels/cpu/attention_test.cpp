#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

// group, head_dim, first_pos, n_tokens, window
using Case = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;
class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, MatchesDoubleReference) {
  const auto [group, hd, first_pos, n_tokens, window] = GetParam();
  const int64_t n_keys = first_pos + n_tokens;
  const int64_t ldq = group * hd + 5, ldo = group * hd + 3;
  const auto q = test::random_floats(size_t(n_tokens * ldq), 1, -2.0f, 2.0f);
  const auto k = test::random_floats(size_t(n_keys * hd), 2, -2.0f, 2.0f);
  const auto v = test::random_floats(size_t(n_keys * hd), 3);
  std::vector<float> out(size_t(n_tokens * ldo), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> scratch(attention_scratch_floats(n_tokens, group, hd, n_keys - 1));
  AttentionArgs a;
  a.q = q.data();
  a.ldq = ldq;
  a.k = k.data();
  a.v = v.data();
  a.n_tokens = n_tokens;
  a.group = group;
  a.head_dim = hd;
  a.first_pos = first_pos;
  a.window = window;
  a.scale = float(1.0 / std::sqrt(double(hd)));
  a.out = out.data();
  a.ldo = ldo;
  attention(a, scratch.data());

  for (int64_t t = 0; t < n_tokens; ++t) {
    const int64_t pos = first_pos + t;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    for (int64_t g = 0; g < group; ++g) {
      const float* qr = q.data() + t * ldq + g * hd;
      std::vector<double> s;
      double mx = -1e300;
      for (int64_t j = lo; j <= pos; ++j) {
        double d = 0;
        for (int64_t c = 0; c < hd; ++c) d += double(qr[c]) * k[size_t(j * hd + c)];
        s.push_back(d / std::sqrt(double(hd)));
        mx = std::max(mx, s.back());
      }
      double sum = 0;
      for (double& e : s) sum += e = std::exp(e - mx);
      for (int64_t c = 0; c < hd; ++c) {
        double ref = 0;
        for (int64_t j = lo; j <= pos; ++j) ref += s[size_t(j - lo)] / sum * v[size_t(j * hd + c)];
        // Outputs are convex mixtures of values in [-1, 1]; fp32 scores of magnitude <~ 10
        // carry ~1e-6 relative error into the weights: 2e-5 absolute is well above that
        // and far below the change from one wrong or missing key (~1/n_keys).
        EXPECT_NEAR(out[size_t(t * ldo + g * hd + c)], ref, 2e-5) << "t " << t << " g " << g << " c " << c;
      }
    }
    for (int64_t c = group * hd; c < ldo; ++c) EXPECT_TRUE(std::isnan(out[size_t(t * ldo + c)]));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Case{1, 8, 0, 1, 0},       // a single token sees itself
                                           Case{3, 64, 0, 7, 0},      // prefill from 0, GQA group of 3
                                           Case{3, 64, 17, 1, 0},     // decode step
                                           Case{2, 18, 5, 70, 0},     // more tokens than one block, odd head_dim
                                           Case{4, 32, 40, 33, 16},   // sliding window shorter than the context
                                           Case{1, 16, 3, 40, 64},    // window longer than everything: no effect
                                           Case{2, 8, 100, 1, 5}));   // decode with a window

TEST(Attention, ScratchCoversTheLongestRow) {
  // rows = min(n, block) * group; each holds q, out and one score per visible key.
  EXPECT_EQ(attention_scratch_floats(1, 3, 64, 99), size_t(3 * (128 + 100)));
  EXPECT_EQ(attention_scratch_floats(100, 2, 8, 199), size_t(kAttentionTokenBlock * 2 * (16 + 200)));
}

}  // namespace
}  // namespace aqlm::cpu
