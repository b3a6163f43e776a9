#pragma once
// Round-to-nearest: every group of `group_size` consecutive input weights of a row gets its own
// asymmetric min-max grid (uniform_grid.h). The baseline every other quantizer must beat.
#include <cstdint>

#include "core/quant/layer_problem.h"
#include "core/quant/uniform_grid.h"

namespace aqlm {

struct RtnOptions {
  int bits = 4;              // 2..8
  int64_t group_size = 128;  // 0: one group per row; a last, shorter group is allowed
};

// Uses only problem.weight (XTX plays no part). Errors name the layer.
DenseQuantResult quantize_rtn(const LayerProblem& problem, const RtnOptions& options);

}  // namespace aqlm
