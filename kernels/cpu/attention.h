#pragma once
// Causal scaled-dot-product attention of the query heads that share one KV head (grouped-
// query attention), against that head's slice of the KV cache, with an optional sliding window.
#include <cstddef>
#include <cstdint>

namespace aqlm::cpu {

struct AttentionArgs {
  // Queries: token t, query head g of the group starts at q + t * ldq + g * head_dim.
  const float* q = nullptr;
  int64_t ldq = 0;
  // This KV head's cache: key/value of position j at k + j * head_dim, v + j * head_dim.
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_tokens = 0;   // queries in this call
  int64_t group = 1;      // query heads per KV head
  int64_t head_dim = 0;
  int64_t first_pos = 0;  // position of token 0; token t is at first_pos + t and its key is in the cache
  int64_t window = 0;     // sliding window: position p sees keys (p - window, p]; 0 = all previous keys
  float scale = 1.0f;     // usually 1 / sqrt(head_dim)
  // Output, laid out like q.
  float* out = nullptr;
  int64_t ldo = 0;
};

// Queries handled per inner block (bounds the score matrix held in scratch).
constexpr int64_t kAttentionTokenBlock = 32;

// Scratch floats attention() needs for a call with these sizes.
size_t attention_scratch_floats(int64_t n_tokens, int64_t group, int64_t head_dim, int64_t last_pos);

void attention(const AttentionArgs& a, float* scratch);

}  // namespace aqlm::cpu
