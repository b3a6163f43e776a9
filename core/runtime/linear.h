#pragma once
// A projection y = W x (+ b) of a decoder block or the LM head, whatever its weights are
// stored as: dense (F32 / F16 / BF16, read in place from the WeightStore) or AQLM
// (P.codes / P.codebooks / P.scales, REFERENCE.md section 5). Threads share one product in
// two phases: prepare() work items (AQLM lookup tables, written to a buffer all threads
// read), then ranges of output rows.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_config.h"
#include "core/model/weight_store.h"

namespace aqlm {

class ThreadPool;

class Linear {
 public:
  virtual ~Linear() = default;
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // "dense F16", "AQLM 2x8g8", ... (for `info` and logs).
  virtual std::string describe() const = 0;
  // Bytes of weights one pass over this projection reads.
  virtual size_t weight_bytes() const = 0;

  // Phase 1 for n tokens: `prepare_items(n)` independent items (0 = no phase 1) that fill a
  // buffer of shared_floats(n) floats which every forward_rows() of this call reads.
  virtual int64_t prepare_items(int64_t /*n*/) const { return 0; }
  virtual size_t shared_floats(int64_t /*n*/) const { return 0; }
  virtual void prepare(const float* /*x*/, int64_t /*n*/, int64_t /*ldx*/, float* /*shared*/, int64_t /*item_begin*/,
                       int64_t /*item_end*/) const {}

  // Phase 2. Floats of per-thread scratch forward_rows() needs for up to n tokens, and the
  // rows per work item when threads split the output for n tokens: whole GEMM tiles for
  // long batches, small blocks for decode so many cores can share a small matrix.
  virtual size_t scratch_floats(int64_t n) const = 0;
  virtual int64_t row_granularity(int64_t n) const { return n <= 8 ? 16 : 64; }
  // y[t * ldy + r] = sum_k W[r, k] x[t * ldx + k] (+ bias[r]) for t < n, r in [row_begin, row_end).
  virtual void forward_rows(const float* x, int64_t n, int64_t ldx, const float* shared, float* y, int64_t ldy,
                            int64_t row_begin, int64_t row_end, float* scratch) const = 0;

 protected:
  Linear(int64_t in, int64_t out) : in_(in), out_(out) {}
  int64_t in_, out_;
};

// The projection named `prefix` ("model.layers.3.mlp.down_proj"): prefix.weight when dense,
// prefix.codes/.codebooks/.scales when AQLM (with `config.aqlm` giving M, B and g); prefix.bias
// when present. `weight_name` overrides the dense weight's name (a tied LM head reads
// model.embed_tokens.weight). Throws Error naming the tensor when it is missing or its
// shape or type does not fit [out, in].
std::unique_ptr<Linear> load_linear(const WeightStore& weights, const ModelConfig& config, const std::string& prefix,
                                    int64_t in_features, int64_t out_features, const std::string& weight_name = "");

// Both phases of one projection over all rows on `pool` (allocates its own buffers; the
// engine keeps its own instead). For other rooms' tools and tests.
void run_linear(const Linear& linear, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy, ThreadPool& pool);

}  // namespace aqlm
