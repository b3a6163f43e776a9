#include "kernels/cpu/aqlm_gemv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cpu/aqlm_test_data.h"

namespace aqlm::cpu {
namespace {

constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------
// The numpy float64 fixture (scripts/reference/aqlm_gemv_fixture.py).

struct FixtureCase {
  std::string name;
  int64_t out = 0, in = 0, n = 0;
  int M = 0, B = 0, g = 0, code_bytes = 0;
  uint64_t seed = 0;
  std::vector<double> y, w;
  std::vector<uint16_t> w16;
};

std::filesystem::path fixture_path() {
  if (const char* dir = std::getenv("AQLM_SOURCE_DIR"))
    return std::filesystem::path(dir) / "tests/fixtures/kernels/aqlm_gemv_cases.txt";
  // kernels/cpu/aqlm_gemv_test.cpp -> the repository root
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
         "tests/fixtures/kernels/aqlm_gemv_cases.txt";
}

std::vector<FixtureCase> load_fixture() {
  std::ifstream in(fixture_path());
  if (!in) ADD_FAILURE() << "cannot open " << fixture_path();
  std::vector<FixtureCase> cases;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string tag;
    s >> tag;
    if (tag == "case") {
      FixtureCase c;
      s >> c.name >> c.out >> c.in >> c.M >> c.B >> c.g >> c.code_bytes >> c.n >> c.seed;
      cases.push_back(c);
    } else if (tag == "y" || tag == "w") {
      auto& dst = tag == "y" ? cases.back().y : cases.back().w;
      double v;
      while (s >> v) dst.push_back(v);
    } else if (tag == "w16") {
      std::string hex;
      while (s >> hex) cases.back().w16.push_back(uint16_t(std::stoul(hex, nullptr, 16)));
    }
  }
  return cases;
}

// A ThreadPool-shaped executor for the tests: three real threads on disjoint chunks.
void three_threads(size_t n, const RangeFn& fn, size_t) {
  const size_t parts = 3, chunk = (n + parts - 1) / parts;
  std::vector<std::thread> threads;
  for (size_t p = 0; p < parts; ++p) {
    const size_t b = std::min(n, p * chunk), e = std::min(n, b + chunk);
    if (b < e) threads.emplace_back([&fn, b, e, p] { fn(b, e, int(p)); });
  }
  for (auto& t : threads) t.join();
}

TEST(AqlmGemvFixture, ReferenceMatchesNumpy) {
  const auto cases = load_fixture();
  ASSERT_EQ(cases.size(), 10u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<float> x;
    const test::AqlmLayer layer = test::recipe_layer(c.out, c.in, c.M, c.B, c.g, c.code_bytes, c.n, c.seed, x);
    ASSERT_EQ(c.y.size(), size_t(c.n * c.out));
    std::vector<float> y(c.y.size(), kPoison);
    aqlm_gemv_reference(layer.view(), x.data(), c.n, c.in, y.data(), c.out, 0, c.out);
    // Double accumulation, one rounding to float: within one float ulp of the numpy value.
    for (size_t i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y[i], c.y[i], std::abs(c.y[i]) * std::ldexp(1.0, -23) + 1e-30) << "output " << i;
  }
}

TEST(AqlmGemvFixture, FastKernelsMatchNumpy) {
  for (const auto& c : load_fixture()) {
    for (bool threaded : {false, true}) {
      SCOPED_TRACE(c.name + (threaded ? " threaded" : ""));
      std::vector<float> x;
      const test::AqlmLayer layer = test::recipe_layer(c.out, c.in, c.M, c.B, c.g, c.code_bytes, c.n, c.seed, x);
      const AqlmView w = layer.view();
      std::vector<float> scratch(aqlm_gemv_scratch_floats(w, c.n) + 1);
      std::vector<float> y(c.y.size(), kPoison);
      aqlm_gemv(w, x.data(), c.n, c.in, y.data(), c.out, scratch.data(),
                threaded ? ParallelFor(three_threads) : ParallelFor());
      const auto abs_sum = test::abs_products(w, x.data(), c.n, c.in);
      for (size_t i = 0; i < y.size(); ++i)
        EXPECT_NEAR(y[i], c.y[i], test::fp32_sum_bound(w, abs_sum[i])) << "output " << i;
    }
  }
}

TEST(AqlmGemvFixture, DequantizeMatchesNumpyExactly) {
  int checked = 0;
  for (const auto& c : load_fixture()) {
    if (c.w.empty()) continue;
    SCOPED_TRACE(c.name);
    std::vector<float> x;
    const test::AqlmLayer layer = test::recipe_layer(c.out, c.in, c.M, c.B, c.g, c.code_bytes, c.n, c.seed, x);
    // The recipe's codebook sums and scales have few enough bits that W is exact in fp32,
    // so fp32 must match exactly and fp16 must be numpy's round-to-nearest-even.
    std::vector<float> w32(size_t(c.out * c.in), kPoison);
    aqlm_dequantize(layer.view(), 0, c.out, w32.data());
    for (size_t i = 0; i < w32.size(); ++i) ASSERT_EQ(double(w32[i]), c.w[i]) << "weight " << i;
    std::vector<uint16_t> w16(size_t(c.out * c.in), 0xffff);
    aqlm_dequantize_f16(layer.view(), 0, c.out, w16.data());
    for (size_t i = 0; i < w16.size(); ++i) ASSERT_EQ(w16[i], c.w16[i]) << "weight " << i;
    // A row range writes rows [1, out-1) at the start of the buffer.
    std::vector<float> part(size_t((c.out - 2) * c.in), kPoison);
    aqlm_dequantize(layer.view(), 1, c.out - 1, part.data());
    for (size_t i = 0; i < part.size(); ++i) ASSERT_EQ(double(part[i]), c.w[size_t(c.in) + i]);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

// ---------------------------------------------------------------------------------------
// Fresh random layers of realistic and odd shapes: the fast kernels against the reference.

struct Shape {
  int64_t out, in;
  int M, B, g;
};

class AqlmGemvRandom : public ::testing::TestWithParam<Shape> {};

TEST_P(AqlmGemvRandom, FastMatchesReferenceOnRowRangesAndStrides) {
  const Shape s = GetParam();
  const test::AqlmLayer layer = test::random_layer(s.out, s.in, s.M, s.B, s.g, uint64_t(s.out * 7 + s.in + s.B));
  const AqlmView w = layer.view();
  std::mt19937_64 rng(uint64_t(s.in * 3 + s.M));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n : {1, 2, 3, 5, 8}) {
    SCOPED_TRACE(testing::Message() << "tokens " << n);
    const int64_t ldx = s.in + 5, ldy = s.out + 3;
    std::vector<float> x(size_t(n * ldx));
    for (auto& v : x) v = normal(rng);
    std::vector<float> ref(size_t(n * ldy), kPoison), y(size_t(n * ldy), kPoison);
    aqlm_gemv_reference(w, x.data(), n, ldx, ref.data(), ldy, 0, s.out);
    // Phase functions on a ragged row range [3, out - 2): other rows must stay untouched.
    std::vector<float> scratch(aqlm_gemv_scratch_floats(w, n) + 1);
    aqlm_gemv_prepare(w, x.data(), n, ldx, scratch.data(), 0, w.groups() / 2);
    aqlm_gemv_prepare(w, x.data(), n, ldx, scratch.data(), w.groups() / 2, w.groups());
    aqlm_gemv_rows(w, x.data(), n, ldx, scratch.data(), y.data(), ldy, 3, s.out - 2);
    const auto abs_sum = test::abs_products(w, x.data(), n, ldx);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t o = 0; o < ldy; ++o) {
        const float v = y[size_t(t * ldy + o)];
        if (o < 3 || o >= s.out - 2) {
          EXPECT_TRUE(std::isnan(v)) << "row " << o << " outside the range was written";
        } else {
          ASSERT_NEAR(v, ref[size_t(t * ldy + o)], test::fp32_sum_bound(w, abs_sum[size_t(t * s.out + o)]))
              << "token " << t << " row " << o;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AqlmGemvRandom,
                         ::testing::Values(Shape{1000, 576, 2, 8, 8},   // odd rows, 72 groups
                                           Shape{64, 576, 1, 16, 8},    // 1x16g8
                                           Shape{37, 64, 1, 8, 8},      // 1x8g8
                                           Shape{29, 96, 3, 8, 8},      // general Kx8
                                           Shape{21, 48, 2, 12, 8},     // 2x12g8 (direct)
                                           Shape{19, 172, 1, 8, 4},     // stories260K w2, g=4
                                           Shape{11, 64, 2, 16, 8}));   // 2x16g8

TEST(AqlmGemv, ManyTokensRunInPasses) {
  const test::AqlmLayer layer = test::random_layer(40, 64, 2, 8, 8, 5);
  const int64_t n = 19;  // three passes of <= 8 tokens
  std::vector<float> x(size_t(n * 64));
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<float> ref(size_t(n * 40)), y(size_t(n * 40), kPoison);
  aqlm_gemv_reference(layer.view(), x.data(), n, 64, ref.data(), 40, 0, 40);
  std::vector<float> scratch(aqlm_gemv_scratch_floats(layer.view(), n));
  aqlm_gemv(layer.view(), x.data(), n, 64, y.data(), 40, scratch.data(), three_threads);
  const auto abs_sum = test::abs_products(layer.view(), x.data(), n, 64);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], test::fp32_sum_bound(layer.view(), abs_sum[i])) << i;
}

// ---------------------------------------------------------------------------------------
// Bad input: one clear line naming what is wrong.

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(AqlmGemvErrors, InconsistentViewsAreRejected) {
  const test::AqlmLayer layer = test::random_layer(8, 16, 2, 8, 8, 1);
  std::vector<float> x(16), y(8), scratch(4096);
  auto gemv = [&](AqlmView w) { return error_of([&] { aqlm_gemv(w, x.data(), 1, 16, y.data(), 8, scratch.data()); }); };

  AqlmView w = layer.view();
  w.codes = nullptr;
  EXPECT_EQ(gemv(w), "AQLM gemv: AQLM layer is missing its codes, codebooks or scales");
  w = layer.view();
  w.nbits = 17;
  EXPECT_EQ(gemv(w), "AQLM gemv: nbits_per_codebook is 17 (expected 1..16)");
  w = layer.view();
  w.nbits = 12;
  EXPECT_EQ(gemv(w), "AQLM gemv: 12-bit codes do not fit the 8-bit integers that hold them");
  w = layer.view();
  w.in = 20;
  EXPECT_EQ(gemv(w), "AQLM gemv: 20 input features are not a multiple of in_group_size 8");
  w = layer.view();
  w.code_bytes = 4;
  EXPECT_EQ(gemv(w), "AQLM gemv: codes of 4 bytes are not supported (expected int8 or int16)");
  w = layer.view();
  w.out = 0;
  EXPECT_EQ(gemv(w), "AQLM gemv: AQLM layer has an empty shape 0 x 16");
  EXPECT_NO_THROW(check_aqlm_view(layer.view(), "fine"));
  EXPECT_EQ(error_of([&] { check_aqlm_view(w, "model.layers.0.mlp.up_proj"); }),
            "model.layers.0.mlp.up_proj: AQLM layer has an empty shape 0 x 16");
}

TEST(AqlmGemvErrors, BadCallsAreRejected) {
  const test::AqlmLayer layer = test::random_layer(8, 16, 2, 8, 8, 1);
  const AqlmView w = layer.view();
  std::vector<float> x(16 * 9), y(8 * 9), scratch(aqlm_gemv_scratch_floats(w, 8));
  EXPECT_EQ(error_of([&] { aqlm_gemv(w, x.data(), 0, 16, y.data(), 8, scratch.data()); }),
            "AQLM gemv: token count is 0 (expected at least 1)");
  EXPECT_EQ(error_of([&] { aqlm_gemv(w, x.data(), 1, 15, y.data(), 8, scratch.data()); }),
            "AQLM gemv: row strides 15/8 are too small for 16 inputs");
  EXPECT_EQ(error_of([&] { aqlm_gemv_rows(w, x.data(), 1, 16, scratch.data(), y.data(), 8, 2, 9); }),
            "AQLM gemv: rows [2, 9) are outside the layer's 8 rows");
  EXPECT_EQ(error_of([&] { aqlm_gemv_rows(w, x.data(), 9, 16, scratch.data(), y.data(), 8, 0, 8); }),
            "AQLM gemv: 9 tokens in one pass (expected 1..8)");
  EXPECT_EQ(error_of([&] { aqlm_gemv_prepare(w, x.data(), 1, 16, scratch.data(), 1, 3); }),
            "AQLM gemv: groups [1, 3) are outside the layer's 2 groups");
  EXPECT_EQ(error_of([&] { aqlm_dequantize(w, 4, 2, y.data()); }),
            "AQLM dequantize: rows [4, 2) are outside the layer's 8 rows");
}

}  // namespace
}  // namespace aqlm::cpu
