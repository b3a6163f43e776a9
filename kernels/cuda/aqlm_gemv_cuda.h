#pragma once
// AQLM linear layers on CUDA GPUs (sm_80, sm_90), in_group_size 8.
//
// A layer is prepared ONCE at load time (aqlm::cuda::prepare): its codes, codebooks and scales
// are copied to the GPU, the codes re-laid out for the kernel that serves the configuration.
// - aqlm_gemv: y = x W^T for any number of tokens (meant for 1..8: decode and small
//   batches), fp16 or bf16 activations, fp32 accumulation.
//   B <= 8 (1x8g8, 2x8g8, Kx8g8 up to 4 codebooks): lookup tables of input-group . codeword
//   dot products in shared memory, one output row per thread, codes streamed from a
//   slab-major layout with coalesced 16-byte loads (aqlm_gemv_layout.h); passes of up to 4 tokens.
//   B > 8 (1x16g8, 2x16g8, 2x12g8...): codewords gathered through L1/L2 (the 1 MiB 1x16
//   codebook stays in L2); codes kept as stored; passes of up to 8 tokens.
//   Inputs are split into sets of groups handled by different blocks whose partial sums are
//   added in a fixed order (deterministic results): for B <= 8 by the warp that completes a
//   32-row group, for B > 8 by a second small kernel, launched as a programmatic dependent
//   launch on sm_90 so its start overlaps the first kernel's tail.
// - aqlm_dequantize: W [out, in] in fp16/bf16 for prefill (then a cuBLAS GEMM).
// See docs/gpu-notes.md for the design and measurements.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/aqlm_gemv.h"

namespace aqlm::cuda {

enum class DType : uint8_t { F16, BF16 };

// Where the pointers of a view given to prepare() point.
enum class Memory : uint8_t { Host, Device };

// A layer on the GPU, laid out for the kernels. Owns its device memory; movable.
class AqlmCudaPlan {
 public:
  AqlmCudaPlan() = default;
  ~AqlmCudaPlan();
  AqlmCudaPlan(AqlmCudaPlan&& o) noexcept;
  AqlmCudaPlan& operator=(AqlmCudaPlan&& o) noexcept;
  AqlmCudaPlan(const AqlmCudaPlan&) = delete;
  AqlmCudaPlan& operator=(const AqlmCudaPlan&) = delete;

  // Shape and configuration; codebooks and scales are device pointers. `codes` points at the
  // device codes in this plan's layout (slab layout when `slabs()`, else as stored).
  const AqlmView& view() const { return view_; }
  bool slabs() const { return slab_layout_; }
  int64_t rows_padded() const { return rows_padded_; }
  int64_t slab_count() const { return slab_count_; }
  size_t device_bytes() const { return bytes_; }

 private:
  friend AqlmCudaPlan prepare(const AqlmView& w, Memory where, const char* what);
  AqlmView view_{};
  bool slab_layout_ = false;
  int64_t rows_padded_ = 0, slab_count_ = 0;
  void* memory_ = nullptr;  // codes, codebooks, scales in one allocation
  size_t bytes_ = 0;
};

// Throws aqlm::Error naming `what` when the CUDA kernels cannot run this layer: the checks
// of check_aqlm_view plus in_group_size 8, 1..4 codebooks for B <= 8 (1..2 for B > 8).
void check_cuda_aqlm_view(const AqlmView& w, const char* what);

// Device bytes prepare() will allocate for a layer of this shape (pointers unused).
size_t prepared_bytes(const AqlmView& shape);

// Copies the layer to the GPU in the kernels' layout (synchronously; load time only).
AqlmCudaPlan prepare(const AqlmView& w, Memory where, const char* what);

// Scratch for the split-input partial sums and per-row-group arrival counters (zero between
// calls). It grows on demand and is reused; use one per stream (calls on one stream are ordered).
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

// Tuning knobs, for the benchmark: 0 / true = the built-in choice.
struct AqlmGemvOptions {
  int slabs_per_set = 0;    // lookup-table kernel: slabs (16 code bytes each) per block's table set: 1, 2, 4, 8
  bool dependent_launch = true;  // gather kernel: launch its reduction as a programmatic dependent launch (sm_90)
};

// y[t, o] for t < n, o < w.out. x is [n, w.in] and y is [n, w.out], contiguous, both of
// type `act`, device pointers (x 16-byte aligned). Asynchronous on `stream`.
void aqlm_gemv(const AqlmCudaPlan& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& workspace,
               cudaStream_t stream = nullptr, const AqlmGemvOptions& options = {});

// out [w.out, w.in] = W in `act` (round to nearest even from the fp32 value, as
// cpu::aqlm_dequantize computes it). Asynchronous on `stream`.
void aqlm_dequantize(const AqlmCudaPlan& w, void* out, DType act, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
