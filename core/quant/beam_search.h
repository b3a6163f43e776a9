#pragma once
// One sweep of AQLM's code search with the output-error objective (REFERENCE.md section 2).
//
// For a row o and an input group j, with the other groups fixed, the error as a function of
// the group's unscaled code sum v = sum_m codebook_m[code_m] is (up to a constant)
//     s_o^2 * psi(v),   psi(v) = v^T H v - 2 u^T v,   H = XTX[j, j],   u = (R[o, j] / s_o) + H v_old
// where R = (W - W') XTX for the current codes. Choosing codebook m's word c for a hypothesis
// whose other words sum to p changes psi by  c^T H c - 2 (u - H p)^T c:  a candidate score of
// candidate_search.h, so all 2^B words of all rows are scored as one product.
//
// The sweep visits the groups in a seeded random order and, inside a group, the codebooks in
// a seeded random order, keeping the `beam_size` best hypotheses per row across the
// codebooks of the group (the codebooks of one group interact most: they add up to the same
// weights). The best hypothesis replaces the row's codes only if it lowers psi when recomputed
// in double, so the objective never rises. R is then updated for the groups not visited yet
// (a rank-g product), which carries every change to the later groups, as GPTQ does.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/quant/quantized_layer.h"

namespace aqlm {

class ThreadPool;

struct BeamSearchOptions {
  int beam_size = 1;
  uint64_t seed = 0;
  const std::atomic<bool>* cancel = nullptr;  // checked between groups; Error "cancelled" when set
  ThreadPool* pool = nullptr;                  // null: ThreadPool::global()
};

// Called after every few groups: groups done, groups in all, predicted change of
// tr(E XTX E^T) so far (<= 0).
using BeamSearchProgress = std::function<void(int64_t, int64_t, double)>;

// Updates layer.codes in place. xtx: [in, in] float64; xtx_f: the same in float32;
// error_xtx: (W - W') XTX [out, in] for the current codes (consumed: garbage afterwards).
// Returns the predicted change of tr(E XTX E^T) (<= 0).
double beam_search_sweep(QuantizedLayer& layer, const double* xtx, const float* xtx_f,
                         std::vector<float>& error_xtx, const BeamSearchOptions& options,
                         const BeamSearchProgress& progress = {});

}  // namespace aqlm
