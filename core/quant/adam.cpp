#include "core/quant/adam.h"

#include <cmath>

#include "core/common/error.h"

namespace aqlm {

static void check_options(const AdamOptions& o) {
  AQLM_CHECK(std::isfinite(o.learning_rate) && o.learning_rate > 0, "Adam: learning rate ", o.learning_rate,
             " must be positive");
  AQLM_CHECK(o.beta1 >= 0 && o.beta1 < 1, "Adam: beta1 ", o.beta1, " must be in [0, 1)");
  AQLM_CHECK(o.beta2 >= 0 && o.beta2 < 1, "Adam: beta2 ", o.beta2, " must be in [0, 1)");
  AQLM_CHECK(o.eps >= 0, "Adam: eps ", o.eps, " must not be negative");
}

Adam::Adam(const AdamOptions& options) : options_(options) { check_options(options_); }

void Adam::set_learning_rate(double lr) {
  AdamOptions o = options_;
  o.learning_rate = lr;
  check_options(o);
  options_ = o;
}

size_t Adam::add(std::span<float> value, std::span<const float> gradient) {
  AQLM_CHECK(value.size() == gradient.size(), "Adam: a parameter of ", value.size(), " values has a gradient of ",
             gradient.size());
  params_.push_back(Param{value, gradient, std::vector<float>(value.size(), 0.0f), std::vector<float>(value.size(), 0.0f)});
  return params_.size() - 1;
}

void Adam::step() {
  ++step_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  // torch: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  const double step_size = options_.learning_rate / (1.0 - std::pow(b1, double(step_)));
  const double v_correction = 1.0 / std::sqrt(1.0 - std::pow(b2, double(step_)));
  for (Param& p : params_) {
    const size_t n = p.value.size();
    for (size_t i = 0; i < n; ++i) {
      const double g = p.gradient[i];
      const double m = b1 * p.m[i] + (1.0 - b1) * g;
      const double v = b2 * p.v[i] + (1.0 - b2) * g * g;
      p.m[i] = float(m);
      p.v[i] = float(v);
      p.value[i] = float(p.value[i] - step_size * m / (std::sqrt(v) * v_correction + options_.eps));
    }
  }
}

}  // namespace aqlm
