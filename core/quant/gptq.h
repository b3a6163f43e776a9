#pragma once
// GPTQ (Frantar et al. 2022) with the layer's XTX as the Hessian: columns are quantized one at
// a time on the uniform grid of uniform_grid.h and each column's rounding error is spread over
// the columns not yet quantized through the upper Cholesky factor of the inverse Hessian.
// Lazy batch updates: inside a block of columns the error moves only the block; the rest of
// the matrix gets one GEMM per block. Computed in double; rows are independent, so they run in
// fixed tiles on the thread pool (bit-identical whatever the thread count).
#include <cstdint>

#include "core/quant/layer_problem.h"
#include "core/quant/uniform_grid.h"

namespace aqlm {

struct GptqOptions {
  int bits = 4;                  // 2..8
  int64_t group_size = 128;      // 0: one grid per row, fit on the whole row up front
  bool act_order = false;        // quantize columns in descending order of XTX's diagonal
  double damp = 0.01;            // XTX + damp * mean(diag(XTX)) * I
  int64_t block_size = 128;      // lazy-update block (rounded to a multiple of group_size)
};

// A group's grid is fit when its first column comes up (in processing order), on the
// error-updated weights of the group's columns. Columns whose XTX diagonal is zero (inputs
// never seen) are quantized as zero. Errors name the layer (bad options, XTX not positive
// definite after dampening).
DenseQuantResult quantize_gptq(const LayerProblem& problem, const GptqOptions& options);

}  // namespace aqlm
