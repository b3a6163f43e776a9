#include "kernels/cpu/norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

TEST(RmsNorm, MatchesDoubleReference) {
  for (int64_t dim : {1, 7, 8, 64, 172, 576, 1001}) {
    const auto x = test::random_floats(size_t(dim), uint64_t(dim), -3.0f, 3.0f);
    const auto w = test::random_floats(size_t(dim), uint64_t(dim) + 1, 0.5f, 1.5f);
    std::vector<float> y(static_cast<size_t>(dim));
    const float eps = 1e-5f;
    rmsnorm(x.data(), w.data(), y.data(), dim, eps);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double inv = 1.0 / std::sqrt(ss / double(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) {
      const double ref = x[size_t(i)] * inv * w[size_t(i)];
      // Three float roundings per element: 4e-7 relative is a few ulp.
      EXPECT_NEAR(y[size_t(i)], ref, 4e-7 * std::fabs(ref) + 1e-9) << "dim " << dim << " i " << i;
    }
  }
}

TEST(RmsNorm, InPlaceAndEpsilonMatter) {
  // A zero row gives zero (eps keeps the division finite); in-place equals out-of-place.
  std::vector<float> zero(24, 0.0f), w(24, 1.0f), out(24, 1.0f);
  rmsnorm(zero.data(), w.data(), out.data(), 24, 1e-6f);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  auto x = test::random_floats(24, 3);
  std::vector<float> y(24);
  rmsnorm(x.data(), w.data(), y.data(), 24, 0.5f);  // a large eps visibly shrinks the output
  rmsnorm(x.data(), w.data(), x.data(), 24, 0.5f);
  EXPECT_EQ(x, y);
}

}  // namespace
}  // namespace aqlm::cpu
