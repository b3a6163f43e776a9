#include "kernels/cpu/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "core/common/half.h"
#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

struct StoredWeights {
  DenseMatrix matrix;
  std::vector<float> f32;      // what the kernel reads, as float (after rounding to the type)
  std::vector<uint16_t> half;  // storage for F16 / BF16
  std::vector<float> storage;  // storage for F32
};

StoredWeights make_weights(WeightType type, int64_t rows, int64_t cols, uint64_t seed) {
  StoredWeights s;
  const auto values = test::random_floats(size_t(rows * cols), seed);
  s.f32.resize(values.size());
  if (type == WeightType::F32) {
    s.storage = values;
    s.f32 = values;
    s.matrix.data = s.storage.data();
  } else {
    s.half.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      s.half[i] = type == WeightType::F16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
      s.f32[i] = type == WeightType::F16 ? f16_to_f32(s.half[i]) : bf16_to_f32(s.half[i]);
    }
    s.matrix.data = s.half.data();
  }
  s.matrix.type = type;
  s.matrix.rows = rows;
  s.matrix.cols = cols;
  return s;
}

using Case = std::tuple<WeightType, int64_t, int64_t, int64_t>;  // type, rows, cols, tokens

class MatmulTest : public ::testing::TestWithParam<Case> {};

// Every output of a row range against a double-precision dot product of the same (rounded)
// weights; strided x and y; outputs outside the range must stay untouched.
TEST_P(MatmulTest, MatchesDoubleReference) {
  const auto [type, rows, cols, n] = GetParam();
  const StoredWeights w = make_weights(type, rows, cols, uint64_t(rows * 131 + cols * 7 + n));
  const int64_t ldx = cols + 3, ldy = rows + 5;
  const auto x = test::random_floats(size_t(n * ldx), 99 + uint64_t(n), -2.0f, 2.0f);
  const float poison = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y(size_t(n * ldy), poison);
  std::vector<float> scratch(matmul_scratch_floats(w.matrix) + 1);
  // An odd sub-range exercises row blocks that do not start at 0 and ragged ends.
  const int64_t r0 = rows > 4 ? 1 : 0, r1 = rows > 4 ? rows - 2 : rows;
  matmul(w.matrix, x.data(), n, ldx, y.data(), ldy, r0, r1, scratch.data());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < ldy; ++r) {
      const float got = y[size_t(t * ldy + r)];
      if (r < r0 || r >= r1) {
        EXPECT_TRUE(std::isnan(got)) << "row " << r << " outside [" << r0 << ", " << r1 << ") was written";
        continue;
      }
      double ref = 0, magnitude = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const double term = double(x[size_t(t * ldx + k)]) * w.f32[size_t(r * cols + k)];
        ref += term;
        magnitude += std::fabs(term);
      }
      // fp32 accumulation: the error is a few ulp of the sum of |terms| (sqrt(K) growth
      // in practice); 1e-5 of it is ~100x that, while a single missed or wrong term is
      // typically 1/K of the magnitude (>= 6e-4 here) and fails.
      EXPECT_NEAR(got, ref, 1e-5 * magnitude + 1e-7) << "t=" << t << " r=" << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulTest,
    ::testing::Combine(::testing::Values(WeightType::F32, WeightType::F16, WeightType::BF16),
                       ::testing::Values(int64_t(1), int64_t(9), int64_t(70), int64_t(131)),
                       ::testing::Values(int64_t(1), int64_t(13), int64_t(64), int64_t(172), int64_t(577)),
                       ::testing::Values(int64_t(1), int64_t(2), int64_t(3), int64_t(4), int64_t(5), int64_t(37))));

TEST(ConvertWeights, EachTypeMatchesScalarConversion) {
  for (WeightType type : {WeightType::F32, WeightType::F16, WeightType::BF16}) {
    const StoredWeights w = make_weights(type, 3, 29, 5);
    std::vector<float> out(60, -7.0f);
    convert_weights(w.matrix, 4, 51, out.data());
    for (int i = 0; i < 51; ++i) EXPECT_EQ(out[size_t(i)], w.f32[size_t(4 + i)]) << i;
    EXPECT_EQ(out[51], -7.0f);  // nothing written past count
  }
}

TEST(Matmul, ScratchOnlyForConvertedTypes) {
  DenseMatrix m{WeightType::F32, nullptr, 10, 100};
  EXPECT_EQ(matmul_scratch_floats(m), 0u);
  m.type = WeightType::BF16;
  EXPECT_EQ(matmul_scratch_floats(m), size_t(kGemmTileRows * 100));
}

}  // namespace
}  // namespace aqlm::cpu
