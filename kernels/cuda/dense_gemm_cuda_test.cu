// cuBLAS projections against kernels/cpu/matmul.h on fresh random weights and inputs (the
// same fp16/bf16 values), with row strides on both sides and fp32 output for the LM head.
#include "kernels/cuda/dense_gemm_cuda.h"

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

struct GemmCase {
  int64_t out, in;
  int n;
  DType act;
  bool y_f32;
};

class DenseGemmCuda : public ::testing::TestWithParam<GemmCase> {};

TEST_P(DenseGemmCuda, MatchesCpuMatmul) {
  AQLM_REQUIRE_GPU();
  const GemmCase c = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const int64_t ldx = c.in + 8, ldy = c.out + 5;
  const test::ActData w = test::random_act(size_t(c.out * c.in), c.act, rng, 0.05f);
  const test::ActData x = test::random_act(size_t(c.n * ldx), c.act, rng);
  const size_t y_elem = c.y_f32 ? 4 : 2;
  DeviceBuffer dw(w.bits), dx(x.bits), dy(size_t(c.n * ldy) * y_elem);
  dy.poison();
  cudaStream_t stream = nullptr;
  Blas blas(stream);
  blas.linear(dw.get(), c.out, c.in, dx.get(), ldx, c.n, dy.get(), ldy, c.act, c.y_f32);

  std::vector<float> got(size_t(c.n * ldy));
  bool padding_kept = true;
  if (c.y_f32) {
    got = dy.download<float>();
    for (int t = 0; t < c.n; ++t)
      for (int64_t r = c.out; r < ldy; ++r) padding_kept &= std::isnan(got[size_t(t * ldy + r)]);
  } else {
    const auto bits = dy.download<uint16_t>();
    for (size_t i = 0; i < bits.size(); ++i) got[i] = test::from_act(bits[i], c.act);
    for (int t = 0; t < c.n; ++t)
      for (int64_t r = c.out; r < ldy; ++r) padding_kept &= bits[size_t(t * ldy + r)] == 0xffff;
  }
  EXPECT_TRUE(padding_kept) << "cuBLAS wrote past `out` in a row";

  const cpu::DenseMatrix m{c.act == DType::BF16 ? cpu::WeightType::BF16 : cpu::WeightType::F16, w.bits.data(), c.out,
                           c.in};
  std::vector<float> scratch(cpu::matmul_scratch_floats(m) + 1), ref(size_t(c.n * c.out));
  cpu::matmul(m, x.values.data(), c.n, ldx, ref.data(), c.out, 0, c.out, scratch.data());
  for (int t = 0; t < c.n; ++t)
    for (int64_t r = 0; r < c.out; ++r) {
      // Bound: fp32 accumulation of `in` products (worst case in * 2^-24 * sum |w x|, both
      // sides) plus one rounding to the output type.
      double abs_sum = 0;
      for (int64_t k = 0; k < c.in; ++k)
        abs_sum += std::fabs(double(w.values[size_t(r * c.in + k)]) * x.values[size_t(t * ldx + k)]);
      const double want = ref[size_t(t * c.out + r)], g = got[size_t(t * ldy + r)];
      const double allowed = 2.0 * double(c.in) * std::ldexp(1.0, -24) * abs_sum +
                             (c.y_f32 ? 0.0 : test::act_rounding(c.act) * std::fabs(want));
      ASSERT_LE(std::fabs(g - want), allowed * 1.01 + 1e-7) << "token " << t << " row " << r << ": " << g << " vs " << want;
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DenseGemmCuda,
                         ::testing::Values(GemmCase{300, 172, 5, DType::F16, false}, GemmCase{4096, 4096, 1, DType::F16, false},
                                           GemmCase{512, 64, 1, DType::BF16, false}, GemmCase{97, 64, 23, DType::BF16, true},
                                           GemmCase{1000, 576, 1, DType::F16, true}, GemmCase{1536, 576, 40, DType::F16, false}),
                         [](const auto& info) {
                           const GemmCase& c = info.param;
                           return str(c.out, "x", c.in, "_n", c.n, "_", test::act_name(c.act), c.y_f32 ? "_f32out" : "");
                         });

TEST(DenseGemmCudaErrors, ShortStridesAreRefused) {
  AQLM_REQUIRE_GPU();
  Blas blas(nullptr);
  int dummy = 0;
  try {
    blas.linear(&dummy, 10, 8, &dummy, 4, 1, &dummy, 10, DType::F16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "dense projection: 10 x 8 on 1 tokens (strides 4, 10)");
  }
}

}  // namespace
}  // namespace aqlm::cuda
