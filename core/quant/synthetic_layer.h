#pragma once
// Synthetic layers with the structure that makes real LLM layers hard to quantize:
// heavy-tailed rows (Student-t row scales) and correlated inputs with a few outlier
// channels 10-50x larger than the rest. XTX = X^T X / tokens from the generated inputs.
// scripts/reference/synthetic_layer.py makes the same kind of problem for the reference
// implementation (a different random stream: the same distribution, not the same numbers).
#include <cstdint>

#include "core/quant/layer_problem.h"

namespace aqlm {

struct SyntheticLayerOptions {
  int64_t out_features = 64, in_features = 128;
  int64_t tokens = 0;             // calibration tokens; 0: 4 x in_features
  double row_scale_dof = 3.0;     // Student-t degrees of freedom of the row scales
  int64_t factor_rank = 0;        // shared factors of the inputs; 0: in_features / 8 (at least 1)
  double factor_weight = 1.0;     // input = factor_weight * shared factors + independent noise
  int64_t outlier_channels = 0;   // 0: in_features / 32 (at least 1)
  double outlier_min = 10.0, outlier_max = 50.0;
  uint64_t seed = 0;
};

LayerProblem make_synthetic_layer(const SyntheticLayerOptions& options);

}  // namespace aqlm
