#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

TEST(Rope, RotatesHalfSplitPairs) {
  for (int64_t head_dim : {2, 8, 18, 64, 128}) {
    for (int64_t heads : {1, 3, 9}) {
      const int64_t half = head_dim / 2;
      auto x = test::random_floats(size_t(heads * head_dim), uint64_t(head_dim * heads));
      const auto angles = test::random_floats(size_t(half), 7, -3.2f, 3.2f);
      std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
      for (int64_t i = 0; i < half; ++i) {
        c[size_t(i)] = std::cos(angles[size_t(i)]);
        s[size_t(i)] = std::sin(angles[size_t(i)]);
      }
      const auto before = x;
      rope_apply(x.data(), heads, head_dim, c.data(), s.data());
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < half; ++i) {
          const double a = before[size_t(h * head_dim + i)], b = before[size_t(h * head_dim + half + i)];
          const double ci = c[size_t(i)], si = s[size_t(i)];
          // Two products and a sum in float: 1e-6 absolute on values of magnitude <= 1.5.
          EXPECT_NEAR(x[size_t(h * head_dim + i)], a * ci - b * si, 1e-6);
          EXPECT_NEAR(x[size_t(h * head_dim + half + i)], b * ci + a * si, 1e-6);
        }
      }
    }
  }
}

TEST(Rope, ZeroAngleIsIdentity) {
  auto x = test::random_floats(64, 1);
  const auto before = x;
  std::vector<float> c(16, 1.0f), s(16, 0.0f);
  rope_apply(x.data(), 2, 32, c.data(), s.data());
  EXPECT_EQ(x, before);
}

}  // namespace
}  // namespace aqlm::cpu
