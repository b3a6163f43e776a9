#pragma once
// AQLM linear layers on CUDA GPUs (sm_80, sm_90), from the Hugging Face layout as stored
// (aqlm::AqlmView with device pointers; in_group_size 8):
// - aqlm_gemv: y = x W^T for any number of tokens (meant for 1..8: decode and small
//   batches), fp16 or bf16 activations, fp32 accumulation. B <= 8 (1x8g8, 2x8g8, Kx8g8 up
//   to 4 codebooks): each block builds lookup tables of input-group . codeword dot products
//   in shared memory (passes of up to 4 tokens) and streams the codes through a cp.async
//   pipeline. B > 8 (1x16g8, 2x16g8, 2x12g8...): the codewords are gathered through L1/L2
//   (the 1 MiB 1x16 codebook stays in L2; passes of up to 8 tokens).
// - aqlm_dequantize: W [out, in] in fp16/bf16 for prefill (then a cuBLAS GEMM).
// Inputs are split along `in` into slabs handled by different blocks; their partial sums
// are added in a fixed order by the last block to finish a tile, so results are
// deterministic. See docs/gpu-notes.md for the design and measurements.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/aqlm_gemv.h"

namespace aqlm::cuda {

enum class DType : uint8_t { F16, BF16 };

// Which kernel serves B > 8 codes: gathers through L1/L2 only, or the first 8192 codewords
// of a single codebook kept in shared memory as well (a variant for the benchmark).
enum class DirectVariant : uint8_t { L1Gather, SmemHead };

// Scratch for the split-input reduction: partial sums and per-tile arrival counters. It
// grows on demand and is reused; use one per stream (calls on one stream are ordered).
class AqlmGemvWorkspace {
 public:
  AqlmGemvWorkspace() = default;
  ~AqlmGemvWorkspace();
  AqlmGemvWorkspace(const AqlmGemvWorkspace&) = delete;
  AqlmGemvWorkspace& operator=(const AqlmGemvWorkspace&) = delete;

  // Makes room for `partial_floats` floats and `counters` zeroed counters.
  void reserve(size_t partial_floats, size_t counters);
  float* partial() const { return partial_; }
  unsigned* counters() const { return counters_; }

 private:
  float* partial_ = nullptr;
  unsigned* counters_ = nullptr;
  size_t partial_capacity_ = 0, counter_capacity_ = 0;
};

// Throws aqlm::Error naming `what` when the CUDA kernels cannot run this layer: the checks
// of check_aqlm_view plus in_group_size 8, 1..4 codebooks for B <= 8 (1..2 for B > 8) and
// 16-byte aligned codebooks.
void check_cuda_aqlm_view(const AqlmView& w, const char* what);

// y[t, o] for t < n, o < w.out. x is [n, w.in] and y is [n, w.out], contiguous, both of
// type `act`, device pointers (x 16-byte aligned). Asynchronous on `stream`.
void aqlm_gemv(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& workspace,
               cudaStream_t stream = nullptr, DirectVariant variant = DirectVariant::L1Gather);

// out [w.out, w.in] = W in `act` (round to nearest even from the fp32 value, as
// cpu::aqlm_dequantize computes it). Asynchronous on `stream`.
void aqlm_dequantize(const AqlmView& w, void* out, DType act, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
