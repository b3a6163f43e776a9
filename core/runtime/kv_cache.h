#pragma once
// The fp32 key/value cache of every layer: per layer and KV head, `capacity` rows of
// head_dim floats, so one head's keys are contiguous for the attention kernel.
// Memory is reserved up front but only touched as positions fill.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace aqlm {

class KvCache {
 public:
  KvCache(int layers, int kv_heads, int head_dim, int capacity);
  int capacity() const { return capacity_; }
  size_t bytes() const { return 2 * floats_ * sizeof(float); }

  float* keys(int layer, int head) { return k_.get() + offset(layer, head); }
  float* values(int layer, int head) { return v_.get() + offset(layer, head); }
  const float* keys(int layer, int head) const { return k_.get() + offset(layer, head); }
  const float* values(int layer, int head) const { return v_.get() + offset(layer, head); }

  // Stores one token's keys and values ([kv_heads * head_dim] each) at `pos`.
  void store(int layer, int pos, const float* k, const float* v);

 private:
  size_t offset(int layer, int head) const {
    return (size_t(layer) * size_t(kv_heads_) + size_t(head)) * size_t(capacity_) * size_t(head_dim_);
  }
  int layers_, kv_heads_, head_dim_, capacity_;
  size_t floats_;
  std::unique_ptr<float[]> k_, v_;
};

}  // namespace aqlm
