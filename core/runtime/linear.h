#pragma once
// A projection y = W x (+ b) of a decoder block or the LM head, whatever its weights are
// stored as: dense (F32 / F16 / BF16, read in place from the WeightStore) or AQLM
// (P.codes / P.codebooks / P.scales, REFERENCE.md section 5). The engine asks it for a
// range of output rows so several threads can share one product.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/weight_store.h"

namespace aqlm {

class Linear {
 public:
  virtual ~Linear() = default;
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // "dense F16", "AQLM 2x8g8", ... (for `info` and logs).
  virtual std::string describe() const = 0;
  // Bytes of weights this projection reads per token (for bandwidth figures).
  virtual size_t weight_bytes() const = 0;

  // Floats of per-thread scratch forward_rows() needs for up to n tokens.
  virtual size_t scratch_floats(int64_t n) const = 0;
  // Rows per work item when threads split the output (keeps register blocks and tiles whole).
  virtual int64_t row_granularity() const { return 16; }
  // y[t * ldy + r] = sum_k W[r, k] x[t * ldx + k] (+ bias[r]) for t < n, r in [row_begin, row_end).
  virtual void forward_rows(const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, int64_t row_begin,
                            int64_t row_end, float* scratch) const = 0;

 protected:
  Linear(int64_t in, int64_t out) : in_(in), out_(out) {}
  int64_t in_, out_;
};

// The projection named `prefix` ("model.layers.3.mlp.down_proj"): prefix.weight when dense,
// prefix.codes/.codebooks/.scales when AQLM; prefix.bias when present. `weight_name`
// overrides the dense weight's name (a tied LM head reads model.embed_tokens.weight).
// Throws Error naming the tensor when it is missing or its shape is not [out, in].
std::unique_ptr<Linear> load_linear(const WeightStore& weights, const std::string& prefix, int64_t in_features,
                                    int64_t out_features, const std::string& weight_name = "");

}  // namespace aqlm
