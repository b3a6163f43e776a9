#pragma once
// Adam (Kingma & Ba) over float parameter tensors, with bias correction, as torch.optim.Adam
// computes it (no weight decay): the optimizer of the continuous AQLM parameters
// (codebooks, scales, norm weights) in layer calibration, block fine-tuning and PV-Tuning.
// Each parameter is a span of floats owned elsewhere, with its gradient span beside it;
// step() reads the gradients and updates the values in place.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace aqlm {

struct AdamOptions {
  double learning_rate = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class Adam {
 public:
  // Throws Error when an option is out of range (lr <= 0, betas outside [0, 1), eps < 0).
  explicit Adam(const AdamOptions& options);

  // Registers a parameter and its gradient (same size); returns its index. The spans must
  // stay valid while the optimizer is used.
  size_t add(std::span<float> value, std::span<const float> gradient);

  // One update of every registered parameter from its current gradient.
  void step();

  int64_t steps_taken() const { return step_; }
  const AdamOptions& options() const { return options_; }
  void set_learning_rate(double lr);

  // The moment estimates, for checkpoints and tests: first / second moment of parameter i.
  std::span<const float> first_moment(size_t i) const { return params_.at(i).m; }
  std::span<const float> second_moment(size_t i) const { return params_.at(i).v; }

 private:
  struct Param {
    std::span<float> value;
    std::span<const float> gradient;
    std::vector<float> m, v;
  };
  AdamOptions options_;
  std::vector<Param> params_;
  int64_t step_ = 0;
};

}  // namespace aqlm
