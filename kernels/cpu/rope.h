#pragma once
// Rotary position embedding in the Hugging Face "half-split" layout: in each head of
// dimension d, element i pairs with element i + d/2 (i < d/2) and the pair is rotated by
// angle position * inv_freq[i]. (GGUF and llama2.c store q/k rows for interleaved pairs;
// the loaders un-permute them to this layout.)
#include <cstdint>

namespace aqlm::cpu {

// Rotates `n_heads` consecutive heads of `head_dim` floats in place by one position's
// angles: cos[i], sin[i] for i < head_dim/2.
void rope_apply(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);

}  // namespace aqlm::cpu
