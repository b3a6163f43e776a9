#include "kernels/cpu/activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

int64_t ulp_distance(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

TEST(VectorExp, WithinThreeUlpOverTheFloatRange) {
  std::vector<float> x;
  for (float v = -87.0f; v < 88.5f; v += 0.01234f) x.push_back(v);
  std::vector<float> y(x.size());
  exp_array(x.data(), y.data(), int64_t(x.size()));
  int64_t worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulp_distance(y[i], float(std::exp(double(x[i])))));
  EXPECT_LE(worst, 3);
}

TEST(VectorExp, EdgesUnderflowToZeroAndNegInfinityGivesZero) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {-inf, -1000.0f, -88.0f, 0.0f, 1.0f, -0.0f, -104.0f, 2.0f};
  std::vector<float> y(8);
  exp_array(x.data(), y.data(), 8);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[6], 0.0f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(y[5], 1.0f);
  EXPECT_LE(ulp_distance(y[4], float(std::exp(1.0))), 2);
}

TEST(Swiglu, MatchesDoubleReference) {
  for (int64_t n : {1, 7, 8, 9, 64, 1537}) {
    const auto gate = test::random_floats(size_t(n), uint64_t(n), -12.0f, 12.0f);
    const auto up = test::random_floats(size_t(n), uint64_t(n) + 5, -2.0f, 2.0f);
    std::vector<float> out(static_cast<size_t>(n));
    swiglu(gate.data(), up.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[size_t(i)];
      const double ref = g / (1.0 + std::exp(-g)) * up[size_t(i)];
      // exp (3 ulp), a division and two products in float: 1e-6 relative.
      EXPECT_NEAR(out[size_t(i)], ref, 1e-6 * std::fabs(ref) + 1e-7) << "n " << n << " i " << i;
    }
  }
}

TEST(Swiglu, ExtremeGates) {
  std::vector<float> gate = {-200.0f, 200.0f, 0.0f}, up = {3.0f, 3.0f, 3.0f}, out(3);
  swiglu(gate.data(), up.data(), out.data(), 3);
  EXPECT_NEAR(out[0], 0.0f, 1e-30);
  EXPECT_FLOAT_EQ(out[1], 600.0f);
  EXPECT_EQ(out[2], 0.0f);
}

TEST(Softmax, MatchesDoubleReferenceAndMasksNegInfinity) {
  for (int64_t n : {1, 5, 8, 31, 100, 4097}) {
    auto x = test::random_floats(size_t(n), uint64_t(n), -20.0f, 20.0f);
    if (n > 4) x[2] = -std::numeric_limits<float>::infinity();
    std::vector<double> ref(static_cast<size_t>(n));
    double mx = -1e300, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (int64_t i = 0; i < n; ++i) sum += ref[size_t(i)] = std::exp(double(x[size_t(i)]) - mx);
    softmax(x.data(), n);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double r = ref[size_t(i)] / sum;
      EXPECT_NEAR(x[size_t(i)], r, 1e-6 * r + 1e-12) << "n " << n << " i " << i;  // a few ulp relative
      total += x[size_t(i)];
    }
    if (n > 4) EXPECT_EQ(x[2], 0.0f);
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(LogSumExp, MatchesDoubleReferenceOnAVocabularySizedRow) {
  for (int64_t n : {1, 3, 49152, 150001}) {
    const auto x = test::random_floats(size_t(n), uint64_t(n), -30.0f, 30.0f);
    double mx = -1e300, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (float v : x) sum += std::exp(double(v) - mx);
    // 3-ulp exps summed in double: 1e-6 absolute on a value of ~30 is what a NLL needs.
    EXPECT_NEAR(logsumexp(x.data(), n), mx + std::log(sum), 1e-6) << n;
  }
}

}  // namespace
}  // namespace aqlm::cpu
