#pragma once
// RoPE (Hugging Face half-split pairs, as kernels/cpu/rope.h) and the KV-cache store of the
// CUDA inference engine, in one kernel. Token t of a call sits at position *pos0 + t; the
// position is read on the device, so a captured CUDA graph serves every decode step.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

struct RopeStoreArgs {
  // Per token t: q heads at qkv + t*ld, then k heads at + k_offset, v heads at + v_offset
  // (elements of the activation type). q and k are rotated in place.
  void* qkv = nullptr;
  int64_t ld = 0, k_offset = 0, v_offset = 0;
  int n_tokens = 0, n_heads = 0, kv_heads = 0, head_dim = 0;
  const int* pos0 = nullptr;                             // device: position of token 0
  const float* cos = nullptr;                            // device [positions, head_dim/2]
  const float* sin = nullptr;
  // This layer's cache, [kv_heads, capacity, head_dim] each: the rotated k and the v of
  // token t go to row *pos0 + t (which must be < capacity).
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  int capacity = 0;
};

void rope_store_kv(const RopeStoreArgs& a, DType act, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
