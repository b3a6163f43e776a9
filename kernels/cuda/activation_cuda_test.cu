// SwiGLU against kernels/cpu/activation.h and the bias add against its host definition, on
// fresh random rows laid out as the engine's fused gate/up projection writes them.
#include "kernels/cuda/activation_cuda.h"

#include "kernels/cpu/activation.h"
#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

struct SwigluCase {
  int n;
  int64_t width;
  DType act;
};

class SwigluCuda : public ::testing::TestWithParam<SwigluCase> {};

TEST_P(SwigluCuda, MatchesCpuSwiglu) {
  AQLM_REQUIRE_GPU();
  const SwigluCase c = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const int64_t ld = 2 * c.width + 3;  // [gate | up | 3 padding] per token
  const test::ActData in = test::random_act(size_t(c.n * ld), c.act, rng, 3.0f);
  DeviceBuffer din(in.bits), dh(size_t(c.n * c.width) * 2);
  dh.poison();
  swiglu(din.get(), ld, c.width, dh.get(), c.n, c.width, c.act);
  const auto got = dh.download<uint16_t>();
  std::vector<float> ref(size_t(c.width));
  for (int t = 0; t < c.n; ++t) {
    const float* gate = in.values.data() + t * ld;
    cpu::swiglu(gate, gate + c.width, ref.data(), c.width);
    for (int64_t i = 0; i < c.width; ++i) {
      const double g = test::from_act(got[size_t(t * c.width + i)], c.act), w = ref[size_t(i)];
      // One rounding to the activation type; the CPU's polynomial exp and fp32 division
      // differ from expf by a few 1e-7 relative.
      ASSERT_LE(std::fabs(g - w), (test::act_rounding(c.act) * 1.01 + 1e-6) * std::fabs(w) + 1e-7)
          << "token " << t << " element " << i << ": " << g << " vs " << w;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SwigluCuda,
                         ::testing::Values(SwigluCase{1, 11008, DType::F16}, SwigluCase{3, 1537, DType::BF16},
                                           SwigluCase{9, 172, DType::F16}, SwigluCase{1, 5, DType::F16}),
                         [](const auto& info) {
                           return str("n", info.param.n, "_w", info.param.width, "_", test::act_name(info.param.act));
                         });

TEST(AddBiasCuda, AddsInFloatAndRoundsOnce) {
  AQLM_REQUIRE_GPU();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (DType act : {DType::F16, DType::BF16}) {
    const int n = 4;
    const int64_t width = 333, ldy = 350;
    const test::ActData y = test::random_act(size_t(n * ldy), act, rng);
    const std::vector<float> bias = test::random_floats(size_t(width), rng);
    DeviceBuffer dy(y.bits), db(bias);
    add_bias(dy.get(), ldy, db.as<float>(), n, width, act);
    const auto got = dy.download<uint16_t>();
    for (int t = 0; t < n; ++t)
      for (int64_t i = 0; i < ldy; ++i) {
        const size_t k = size_t(t * ldy + i);
        // The same fp32 sum rounded to nearest even: bit-identical. Columns past width untouched.
        const uint16_t want = i < width ? test::to_act(y.values[k] + bias[size_t(i)], act) : y.bits[k];
        ASSERT_EQ(got[k], want) << test::act_name(act) << " token " << t << " column " << i;
      }
  }
}

TEST(SwigluCudaErrors, LayoutMustHoldBothHalves) {
  int dummy = 0;
  try {
    swiglu(&dummy, 10, 4, &dummy, 1, 6, DType::F16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "SwiGLU: 1 rows of width 6 in rows of 10 with up at 4");
  }
}

}  // namespace
}  // namespace aqlm::cuda
