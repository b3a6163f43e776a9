// unpermute_rope_rows (declared in model.h) lives in its own file so that the weight readers
// can use it without pulling load_model, and with it the tokenizers, into a link.
#include <cstring>
#include <vector>

#include "core/common/error.h"
#include "core/model/model.h"

namespace aqlm {

// Interleaved layout: within a head, row 2*i+j is component j of rotation pair i.
// Half-split layout (HF): row j*(head_dim/2)+i. This is the inverse of the permutation in
// transformers' convert_llama_weights_to_hf.py.
void unpermute_rope_rows(float* weight, int rows, int cols, int n_heads) {
  AQLM_CHECK(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0, "cannot un-permute RoPE rows: ", rows,
             " rows do not split into ", n_heads, " heads of an even size");
  const int head_dim = rows / n_heads;
  const int half = head_dim / 2;
  const size_t row_bytes = size_t(cols) * sizeof(float);
  std::vector<float> head(size_t(head_dim) * size_t(cols));
  for (int h = 0; h < n_heads; ++h) {
    float* base = weight + size_t(h) * head_dim * size_t(cols);
    std::memcpy(head.data(), base, head.size() * sizeof(float));
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j)
        std::memcpy(base + size_t(j * half + i) * cols, head.data() + size_t(2 * i + j) * cols, row_bytes);
  }
}

}  // namespace aqlm
