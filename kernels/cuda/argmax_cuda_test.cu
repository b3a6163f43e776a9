// Device argmax against std::max_element (the CPU sampler's greedy choice) on fresh random
// logits, with planted ties and an all -inf row.
#include "kernels/cuda/argmax_cuda.h"

#include <algorithm>
#include <limits>

#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

int32_t device_argmax(const std::vector<float>& x) {
  DeviceBuffer dx(x), out(4);
  out.poison();
  argmax(dx.as<float>(), int64_t(x.size()), out.as<int32_t>());
  return out.download<int32_t>()[0];
}

TEST(ArgmaxCuda, PicksTheFirstMaximum) {
  AQLM_REQUIRE_GPU();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (size_t n : {size_t(1), size_t(31), size_t(1025), size_t(32000), size_t(49159), size_t(152064)}) {
    std::vector<float> x = test::random_floats(n, rng, 4.0f);
    EXPECT_EQ(device_argmax(x), int32_t(std::max_element(x.begin(), x.end()) - x.begin())) << "n " << n;
    if (n < 3) continue;
    // Ties: the maximum planted at two (then three) places; the first one wins, wherever
    // the threads that scan them sit.
    const float top = *std::max_element(x.begin(), x.end()) + 1.0f;
    const size_t a = rng() % n, b = rng() % n, c = rng() % n;
    x[a] = x[b] = x[c] = top;
    EXPECT_EQ(device_argmax(x), int32_t(std::min({a, b, c}))) << "n " << n;
  }
}

TEST(ArgmaxCuda, AllMinusInfinityGivesZero) {
  AQLM_REQUIRE_GPU();
  const std::vector<float> x(5000, -std::numeric_limits<float>::infinity());
  EXPECT_EQ(device_argmax(x), 0);
}

TEST(ArgmaxCudaErrors, EmptyInputIsRefused) {
  try {
    argmax(nullptr, 0, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "argmax: 0 values or a missing buffer");
  }
}

}  // namespace
}  // namespace aqlm::cuda
