// unpermute_rope_rows (declared in model.h) lives in its own file so that the weight readers
// can use it without pulling load_model, and with it the tokenizers, into a link.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/common/error.h"
#include "core/model/model.h"

namespace aqlm {

// Interleaved layout: within a head, row 2*i+j is component j of rotation pair i.
// Half-split layout (HF): row j*(head_dim/2)+i. This is the inverse of the permutation in
// transformers' convert_llama_weights_to_hf.py.
void unpermute_rope_rows_raw(void* rows_data, int rows, size_t row_bytes, int n_heads) {
  AQLM_CHECK(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0, "cannot un-permute RoPE rows: ", rows,
             " rows do not split into ", n_heads, " heads of an even size");
  const int head_dim = rows / n_heads;
  const int half = head_dim / 2;
  auto* data = static_cast<uint8_t*>(rows_data);
  std::vector<uint8_t> head(size_t(head_dim) * row_bytes);
  for (int h = 0; h < n_heads; ++h) {
    uint8_t* base = data + size_t(h) * size_t(head_dim) * row_bytes;
    std::memcpy(head.data(), base, head.size());
    for (int i = 0; i < half; ++i)
      for (int j = 0; j < 2; ++j)
        std::memcpy(base + size_t(j * half + i) * row_bytes, head.data() + size_t(2 * i + j) * row_bytes, row_bytes);
  }
}

void unpermute_rope_rows(float* weight, int rows, int cols, int n_heads) {
  unpermute_rope_rows_raw(weight, rows, size_t(cols) * sizeof(float), n_heads);
}

}  // namespace aqlm
