#pragma once
// Causal grouped-query attention of the CUDA inference engine against a layer's KV cache
// (as kernels/cpu/attention.h: scores scaled by `scale`, softmax over keys (p - window, p],
// fp32 arithmetic; activations and cache in fp16 or bf16).
// - attention_decode: one query token (decode). Split-K: the visible keys are cut into
//   `splits` equal ranges (their length follows the current position, read on the device,
//   so one launch shape -- and one captured CUDA graph -- serves every step); each block
//   takes one (KV head, range) for all query heads of the group, with an online softmax per
//   warp; a second kernel combines the ranges.
// - attention_prefill: n query tokens (prefill, token batches). Tiled: a block takes 16
//   query tokens of one head and walks 32-key tiles of K/V staged in shared memory, with an
//   online softmax per query row.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

// Largest head dimension the attention kernels take (a multiple of 8 up to this).
constexpr int kMaxAttentionHeadDim = 256;

struct AttentionArgs {
  // Query token t, head h at q + t*ldq + h*head_dim; output likewise at out + t*ldo + h*head_dim.
  const void* q = nullptr;
  int64_t ldq = 0;
  void* out = nullptr;
  int64_t ldo = 0;
  // This layer's cache, [kv_heads, capacity, head_dim] each; key/value of position j at row j.
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  int capacity = 0;
  int n_tokens = 0;   // prefill: query tokens; decode: 1
  int n_heads = 0, kv_heads = 0, head_dim = 0;
  const int* pos0 = nullptr;  // device: position of token 0 (its key is already in the cache)
  int window = 0;             // sliding window (p sees keys (p - window, p]); 0 = all previous keys
  float scale = 1.0f;
};

// Throws aqlm::Error naming the problem when the kernels cannot take this shape.
void check_attention_shape(const AttentionArgs& a);

// Ranges per KV head for the decode kernel: enough blocks to fill the GPU, at most one
// range per 32 positions of the cache.
int attention_decode_splits(int n_heads, int kv_heads, int capacity);
// fp32 workspace the decode kernel needs for `splits` ranges.
size_t attention_decode_workspace_floats(int n_heads, int head_dim, int splits);

// a.n_tokens must be 1. `workspace` holds attention_decode_workspace_floats(...) floats.
void attention_decode(const AttentionArgs& a, int splits, float* workspace, DType act, cudaStream_t stream = nullptr);
void attention_prefill(const AttentionArgs& a, DType act, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
