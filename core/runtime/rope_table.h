#pragma once
// RoPE angles for every position of the context, with the rope_scaling variants of
// Hugging Face (none, "linear", "llama3"), computed in double and stored as float.
#include <vector>

#include "core/model/model_config.h"

namespace aqlm {

// inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, after rope scaling.
std::vector<double> rope_inverse_frequencies(const ModelConfig& config);

class RopeTable {
 public:
  RopeTable(const ModelConfig& config, int positions);
  int positions() const { return positions_; }
  int half_dim() const { return half_; }
  const float* cos(int pos) const { return cos_.data() + size_t(pos) * size_t(half_); }
  const float* sin(int pos) const { return sin_.data() + size_t(pos) * size_t(half_); }

 private:
  int positions_ = 0, half_ = 0;
  std::vector<float> cos_, sin_;
};

}  // namespace aqlm
