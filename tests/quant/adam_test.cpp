// Adam against torch.optim.Adam's update rule computed in float64 by
// scripts/reference/block_reference.py (tests/fixtures/quant/block_adam.json).
#include <gtest/gtest.h>

#include "core/common/error.h"
#include "core/quant/adam.h"
#include "tests/quant/block_test_util.h"

namespace aqlm {
namespace {

TEST(Adam, FollowsTorchUpdateRule) {
  const auto fx = test::load_fixture("block_adam.json");
  AdamOptions o;
  o.learning_rate = fx["lr"];
  o.beta1 = fx["beta1"];
  o.beta2 = fx["beta2"];
  o.eps = fx["eps"];
  Adam adam(o);
  std::vector<float> value = fx["initial"].get<std::vector<float>>();
  std::vector<float> grad(value.size());
  adam.add(value, grad);
  const auto& grads = fx["gradients"];
  const auto& expected = fx["after_step"];
  for (size_t step = 0; step < grads.size(); ++step) {
    const auto g = grads[step].get<std::vector<double>>();
    std::copy(g.begin(), g.end(), grad.begin());
    adam.step();
    const auto want = expected[step].get<std::vector<double>>();
    // Values and moments are stored in float: each step adds at most a few float roundings
    // (~1e-7 of the value); a wrong bias correction would be off by ~lr = 1e-2.
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(value[i], want[i], 2e-6) << "step " << step + 1 << " value " << i;
  }
  EXPECT_EQ(adam.steps_taken(), 4);
}

TEST(Adam, RejectsBadOptionsAndMismatchedGradient) {
  AdamOptions o;
  o.learning_rate = 0;
  EXPECT_THROW(Adam{o}, Error);
  o = AdamOptions{};
  o.beta2 = 1.0;
  EXPECT_THROW(Adam{o}, Error);
  Adam adam(AdamOptions{});
  std::vector<float> value(3), grad(4);
  try {
    adam.add(value, grad);
    FAIL() << "a 3-value parameter with a 4-value gradient was accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Adam: a parameter of 3 values has a gradient of 4");
  }
  EXPECT_THROW(adam.set_learning_rate(-1), Error);
}

}  // namespace
}  // namespace aqlm
