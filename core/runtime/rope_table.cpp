#include "core/runtime/rope_table.h"

#include <cmath>
#include <numbers>

#include "core/common/error.h"

namespace aqlm {

std::vector<double> rope_inverse_frequencies(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) inv[size_t(i)] = 1.0 / std::pow(c.rope_theta, 2.0 * i / c.head_dim);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") {
    for (double& f : inv) f /= s.factor;
  } else if (s.type == "llama3") {
    // As transformers' _compute_llama3_parameters: long wavelengths are divided by the
    // factor, short ones kept, and the band between is interpolated.
    const double old_len = s.original_max_position_embeddings;
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
  } else {
    AQLM_CHECK(s.type.empty(), "rope_scaling type '", s.type, "' is not supported (supported: llama3, linear)");
  }
  return inv;
}

RopeTable::RopeTable(const ModelConfig& config, int positions) : positions_(positions), half_(config.head_dim / 2) {
  const std::vector<double> inv = rope_inverse_frequencies(config);
  cos_.resize(size_t(positions) * size_t(half_));
  sin_.resize(cos_.size());
  for (int p = 0; p < positions; ++p) {
    for (int i = 0; i < half_; ++i) {
      const double angle = double(p) * inv[size_t(i)];
      cos_[size_t(p) * size_t(half_) + size_t(i)] = float(std::cos(angle));
      sin_[size_t(p) * size_t(half_) + size_t(i)] = float(std::sin(angle));
    }
  }
}

}  // namespace aqlm
