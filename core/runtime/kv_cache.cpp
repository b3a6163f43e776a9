#include "core/runtime/kv_cache.h"

#include <cstring>

namespace aqlm {

KvCache::KvCache(int layers, int kv_heads, int head_dim, int capacity)
    : layers_(layers),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      capacity_(capacity),
      floats_(size_t(layers) * size_t(kv_heads) * size_t(capacity) * size_t(head_dim)),
      // Uninitialised on purpose: the OS maps pages as positions are first written.
      k_(new float[floats_]),
      v_(new float[floats_]) {}

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  const size_t row = size_t(pos) * size_t(head_dim_);
  for (int h = 0; h < kv_heads_; ++h) {
    std::memcpy(keys(layer, h) + row, k + size_t(h) * size_t(head_dim_), size_t(head_dim_) * sizeof(float));
    std::memcpy(values(layer, h) + row, v + size_t(h) * size_t(head_dim_), size_t(head_dim_) * sizeof(float));
  }
}

}  // namespace aqlm
