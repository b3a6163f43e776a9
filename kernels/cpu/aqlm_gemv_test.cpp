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

// The kernels this CPU runs for a layer of B-bit codes (LutAvx512 only where supported).
std::vector<AqlmKernel> kernels_for(int nbits) {
  std::vector<AqlmKernel> k = {AqlmKernel::Direct};
  if (nbits <= 8) {
    k.push_back(AqlmKernel::LutAvx2);
    if (aqlm_kernel_supported(AqlmKernel::LutAvx512)) k.push_back(AqlmKernel::LutAvx512);
  }
  return k;
}

// |y - y_ref| allowed for kernel k: fp32 rounding of every product and sum, plus for
// LutAvx512 the int16 table rounding, at most s_b / 2 per table read of block b where
// s_b = max |table entry of block b| / q_max (aqlm_gemv.h). The entries' maxima are
// recomputed here in double; 1e-4 of slack covers their fp32 rounding in the kernel.
std::vector<double> allowed_error(const AqlmView& w, AqlmKernel k, const float* x, int64_t n, int64_t ldx) {
  const auto abs_sum = test::abs_products(w, x, n, ldx);
  std::vector<double> bound(abs_sum.size());
  for (size_t i = 0; i < bound.size(); ++i) bound[i] = test::fp32_sum_bound(w, abs_sum[i]);
  if (k != AqlmKernel::LutAvx512) return bound;
  const AqlmTableQuantization q = aqlm_table_quantization(w.num_codebooks);
  const int64_t K = w.codebook_size(), g = w.group_size, G = w.groups();
  for (int64_t t = 0; t < n; ++t) {
    double per_row = 0.0;  // sum over blocks of lookups * s_b / 2
    for (int64_t j0 = 0; j0 < G; j0 += q.block_groups) {
      const int64_t j1 = std::min(G, j0 + q.block_groups);
      double max_abs = 0.0;
      for (int64_t j = j0; j < j1; ++j)
        for (int m = 0; m < w.num_codebooks; ++m)
          for (int64_t c = 0; c < K; ++c) {
            double dot = 0.0;
            for (int64_t i = 0; i < g; ++i)
              dot += double(f16_to_f32(w.codebooks[(m * K + c) * g + i])) * x[t * ldx + j * g + i];
            max_abs = std::max(max_abs, std::abs(dot));
          }
      per_row += double((j1 - j0) * w.num_codebooks) * max_abs / q.q_max / 2.0;
    }
    for (int64_t o = 0; o < w.out; ++o)
      bound[size_t(t * w.out + o)] += per_row * std::abs(double(f16_to_f32(w.scales[o]))) * (1.0 + 1e-4);
  }
  return bound;
}

TEST(AqlmGemvFixture, EveryKernelMatchesNumpy) {
  for (const auto& c : load_fixture()) {
    std::vector<float> x;
    const test::AqlmLayer layer = test::recipe_layer(c.out, c.in, c.M, c.B, c.g, c.code_bytes, c.n, c.seed, x);
    const AqlmView w = layer.view();
    for (AqlmKernel k : kernels_for(c.B)) {
      const AqlmCpuLayer prepared(w, k);
      const auto allowed = allowed_error(w, k, x.data(), c.n, c.in);
      for (bool threaded : {false, true}) {
        SCOPED_TRACE(c.name + " " + aqlm_kernel_name(k) + (threaded ? " threaded" : ""));
        std::vector<float> tables(prepared.table_floats(c.n) + 1);
        std::vector<float> y(c.y.size(), kPoison);
        aqlm_gemv(prepared, x.data(), c.n, c.in, y.data(), c.out, tables.data(),
                  threaded ? ParallelFor(three_threads) : ParallelFor());
        for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], c.y[i], allowed[i]) << "output " << i;
      }
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

TEST_P(AqlmGemvRandom, EveryKernelMatchesReferenceOnRowRangesAndStrides) {
  const Shape s = GetParam();
  const test::AqlmLayer layer = test::random_layer(s.out, s.in, s.M, s.B, s.g, uint64_t(s.out * 7 + s.in + s.B));
  const AqlmView w = layer.view();
  std::mt19937_64 rng(uint64_t(s.in * 3 + s.M));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (AqlmKernel k : kernels_for(s.B)) {
    const AqlmCpuLayer prepared(w, k);
    EXPECT_EQ(prepared.kernel(), k);
    for (int64_t n : {1, 2, 3, 5, 8}) {
      SCOPED_TRACE(testing::Message() << aqlm_kernel_name(k) << " tokens " << n);
      const int64_t ldx = s.in + 5, ldy = s.out + 3;
      std::vector<float> x(size_t(n * ldx));
      for (auto& v : x) v = normal(rng);
      std::vector<float> ref(size_t(n * ldy), kPoison), y(size_t(n * ldy), kPoison);
      aqlm_gemv_reference(w, x.data(), n, ldx, ref.data(), ldy, 0, s.out);
      // Table items in two calls, then the ragged row range [3, out - 2): other rows stay untouched.
      std::vector<float> tables(prepared.table_floats(n) + 1);
      const int64_t items = prepared.table_items();
      prepared.build_tables(x.data(), n, ldx, tables.data(), 0, items / 2);
      prepared.build_tables(x.data(), n, ldx, tables.data(), items / 2, items);
      prepared.rows(x.data(), n, ldx, tables.data(), y.data(), ldy, 3, s.out - 2);
      const auto allowed = allowed_error(w, k, x.data(), n, ldx);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t o = 0; o < ldy; ++o) {
          const float v = y[size_t(t * ldy + o)];
          if (o < 3 || o >= s.out - 2) {
            EXPECT_TRUE(std::isnan(v)) << "row " << o << " outside the range was written";
          } else {
            ASSERT_NEAR(v, ref[size_t(t * ldy + o)], allowed[size_t(t * s.out + o)]) << "token " << t << " row " << o;
          }
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
                                           Shape{11, 64, 2, 16, 8},     // 2x16g8
                                           Shape{200, 128, 2, 7, 8},    // B = 7: one permute per plane
                                           Shape{70, 80, 5, 8, 8},      // M = 5: codebook pairs + a single
                                           Shape{130, 320, 2, 8, 16}));  // g = 16, 2.5 blocks of groups

TEST(AqlmGemv, ManyTokensRunInPasses) {
  const test::AqlmLayer layer = test::random_layer(40, 64, 2, 8, 8, 5);
  const int64_t n = 19;  // three passes of <= 8 tokens
  std::vector<float> x(size_t(n * 64));
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : x) v = normal(rng);
  std::vector<float> ref(size_t(n * 40));
  aqlm_gemv_reference(layer.view(), x.data(), n, 64, ref.data(), 40, 0, 40);
  for (AqlmKernel k : kernels_for(8)) {
    SCOPED_TRACE(aqlm_kernel_name(k));
    const AqlmCpuLayer prepared(layer.view(), k);
    std::vector<float> tables(prepared.table_floats(n)), y(size_t(n * 40), kPoison);
    aqlm_gemv(prepared, x.data(), n, 64, y.data(), 40, tables.data(), three_threads);
    const auto allowed = allowed_error(layer.view(), k, x.data(), n, 64);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], allowed[i]) << i;
  }
}

TEST(AqlmGemv, AutoPicksTheFastestKernelThisCpuRuns) {
  const test::AqlmLayer lut = test::random_layer(8, 16, 2, 8, 8, 1), direct = test::random_layer(8, 16, 1, 12, 8, 1);
  const AqlmKernel best = aqlm_kernel_supported(AqlmKernel::LutAvx512) ? AqlmKernel::LutAvx512 : AqlmKernel::LutAvx2;
  EXPECT_EQ(AqlmCpuLayer(lut.view()).kernel(), best);
  EXPECT_EQ(AqlmCpuLayer(direct.view()).kernel(), AqlmKernel::Direct);
  EXPECT_EQ(AqlmCpuLayer(direct.view()).table_items(), 0);
  EXPECT_EQ(AqlmCpuLayer(direct.view()).table_floats(8), 0u);
}

// Every output must be bit-identical however rows and table items are split between
// threads (the engine's results must not depend on the thread count).
TEST(AqlmGemv, ResultsDoNotDependOnTheSplit) {
  const test::AqlmLayer layer = test::random_layer(333, 256, 2, 8, 8, 21);
  std::mt19937_64 rng(4);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (AqlmKernel k : kernels_for(8)) {
    const AqlmCpuLayer prepared(layer.view(), k);
    for (int64_t n : {1, 3, 8}) {
      SCOPED_TRACE(testing::Message() << aqlm_kernel_name(k) << " tokens " << n);
      std::vector<float> x(size_t(n * 256));
      for (auto& v : x) v = normal(rng);
      std::vector<float> tables(prepared.table_floats(n)), whole(size_t(n * 333)), split(size_t(n * 333), kPoison);
      aqlm_gemv(prepared, x.data(), n, 256, whole.data(), 333, tables.data());
      std::fill(tables.begin(), tables.end(), kPoison);
      for (int64_t i = 0; i < prepared.table_items(); ++i)  // one item at a time, last first
        prepared.build_tables(x.data(), n, 256, tables.data(), prepared.table_items() - 1 - i,
                              prepared.table_items() - i);
      for (int64_t r = 0; r < 333; r += 37)  // ranges that do not follow row_block()
        prepared.rows(x.data(), n, 256, tables.data(), split.data(), 333, r, std::min<int64_t>(333, r + 37));
      for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], split[i]) << "output " << i;
    }
  }
}

// The int16 tables of LutAvx512 on a SmolLM2-shaped layer with outlier input channels (as
// real activations have): the error stays under the bound and, as a relative RMS error,
// near 5e-5. For scale: a 2x8g8 AQLM layer's own output error is ~8% RMS (relative MSE
// 0.0066 on the quantizer's 4096 x 4096 benchmark layer, docs/benchmarks.md), so the
// tables add ~4e-7 of that MSE.
TEST(AqlmGemv, Int16TablesStayFarBelowTheQuantizationError) {
  if (!aqlm_kernel_supported(AqlmKernel::LutAvx512)) GTEST_SKIP() << "this CPU lacks AVX-512 VBMI";
  const test::AqlmLayer layer = test::random_layer(1536, 576, 2, 8, 8, 77);
  const AqlmView w = layer.view();
  std::mt19937_64 rng(78);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(576);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (i % 97 == 5 ? 40.0f : 1.0f);  // 6 outlier channels
  const AqlmCpuLayer prepared(w, AqlmKernel::LutAvx512);
  std::vector<float> tables(prepared.table_floats(1)), y(1536), ref(1536);
  aqlm_gemv(prepared, x.data(), 1, 576, y.data(), 1536, tables.data());
  aqlm_gemv_reference(w, x.data(), 1, 576, ref.data(), 1536, 0, 1536);
  const auto allowed = allowed_error(w, AqlmKernel::LutAvx512, x.data(), 1, 576);
  double err2 = 0.0, ref2 = 0.0;
  for (size_t o = 0; o < y.size(); ++o) {
    ASSERT_NEAR(y[o], ref[o], allowed[o]) << "row " << o;
    err2 += (double(y[o]) - ref[o]) * (double(y[o]) - ref[o]);
    ref2 += double(ref[o]) * ref[o];
  }
  const double relative_rms = std::sqrt(err2 / ref2);
  EXPECT_LT(relative_rms, 2e-4);  // uniform rounding of 1/65534 of a block's largest entry
  EXPECT_GT(relative_rms, 3e-6);  // the tables really are int16 (fp32 tables give ~1e-7)
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
  auto prepare = [&](AqlmView w) { return error_of([&] { AqlmCpuLayer l(w); }); };

  AqlmView w = layer.view();
  w.codes = nullptr;
  EXPECT_EQ(prepare(w), "AQLM layer: AQLM layer is missing its codes, codebooks or scales");
  w = layer.view();
  w.nbits = 17;
  EXPECT_EQ(prepare(w), "AQLM layer: nbits_per_codebook is 17 (expected 1..16)");
  w = layer.view();
  w.nbits = 12;
  EXPECT_EQ(prepare(w), "AQLM layer: 12-bit codes do not fit the 8-bit integers that hold them");
  w = layer.view();
  w.in = 20;
  EXPECT_EQ(prepare(w), "AQLM layer: 20 input features are not a multiple of in_group_size 8");
  w = layer.view();
  w.code_bytes = 4;
  EXPECT_EQ(prepare(w), "AQLM layer: codes of 4 bytes are not supported (expected int8 or int16)");
  w = layer.view();
  w.out = 0;
  EXPECT_EQ(prepare(w), "AQLM layer: AQLM layer has an empty shape 0 x 16");
  EXPECT_NO_THROW(check_aqlm_view(layer.view(), "fine"));
  EXPECT_EQ(error_of([&] { check_aqlm_view(w, "model.layers.0.mlp.up_proj"); }),
            "model.layers.0.mlp.up_proj: AQLM layer has an empty shape 0 x 16");
  EXPECT_EQ(error_of([&] { AqlmCpuLayer l(layer.view(), AqlmKernel::Auto, "model.layers.0.mlp.up_proj"); }),
            "(no error)");
}

TEST(AqlmGemvErrors, KernelsThatCannotServeTheLayerAreRefused) {
  const test::AqlmLayer wide = test::random_layer(8, 16, 1, 12, 8, 1);
  EXPECT_EQ(error_of([&] { AqlmCpuLayer l(wide.view(), AqlmKernel::LutAvx2, "model.layers.2.self_attn.q_proj"); }),
            "model.layers.2.self_attn.q_proj: the LutAvx2 AQLM kernel needs codes of at most 8 bits, the layer has 12");
  const test::AqlmLayer layer = test::random_layer(8, 16, 2, 8, 8, 1);
  if (!aqlm_kernel_supported(AqlmKernel::LutAvx512))
    EXPECT_EQ(error_of([&] { AqlmCpuLayer l(layer.view(), AqlmKernel::LutAvx512, "q"); }),
              "q: this CPU cannot run the LutAvx512 AQLM kernel (it needs AVX-512 BW and VBMI)");
  const AqlmCpuLayer unprepared;
  std::vector<float> x(16), y(8);
  EXPECT_EQ(error_of([&] { aqlm_gemv(unprepared, x.data(), 1, 16, y.data(), 8, nullptr); }),
            "AQLM gemv: the layer was not prepared");
}

TEST(AqlmGemvErrors, BadCallsAreRejected) {
  const test::AqlmLayer layer = test::random_layer(8, 16, 2, 8, 8, 1);
  const AqlmView w = layer.view();
  for (AqlmKernel k : kernels_for(8)) {
    SCOPED_TRACE(aqlm_kernel_name(k));
    const AqlmCpuLayer l(w, k);
    std::vector<float> x(16 * 9), y(8 * 9), tables(l.table_floats(8) + 1);
    EXPECT_EQ(error_of([&] { aqlm_gemv(l, x.data(), 0, 16, y.data(), 8, tables.data()); }),
              "AQLM gemv: token count is 0 (expected at least 1)");
    EXPECT_EQ(error_of([&] { aqlm_gemv(l, x.data(), 1, 15, y.data(), 8, tables.data()); }),
              "AQLM gemv: row strides 15/8 are too small for 16 inputs");
    EXPECT_EQ(error_of([&] { l.rows(x.data(), 1, 16, tables.data(), y.data(), 8, 2, 9); }),
              "AQLM gemv: rows [2, 9) are outside the layer's 8 rows");
    EXPECT_EQ(error_of([&] { l.rows(x.data(), 9, 16, tables.data(), y.data(), 8, 0, 8); }),
              "AQLM gemv: 9 tokens in one pass (expected 1..8)");
    if (k != AqlmKernel::Direct) {
      EXPECT_EQ(error_of([&] { l.build_tables(x.data(), 1, 16, tables.data(), 1, 3); }),
                "AQLM gemv: table items [1, 3) are outside the layer's 1 items");
      EXPECT_EQ(error_of([&] { l.build_tables(x.data(), 9, 16, tables.data(), 0, 1); }),
                "AQLM gemv: 9 tokens in one table pass (expected 1..8)");
    }
  }
  std::vector<float> y(8);
  EXPECT_EQ(error_of([&] { aqlm_dequantize(w, 4, 2, y.data()); }),
            "AQLM dequantize: rows [4, 2) are outside the layer's 8 rows");
}

}  // namespace
}  // namespace aqlm::cpu
