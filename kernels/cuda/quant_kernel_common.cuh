#pragma once
// Launch shapes and float64 reductions shared by the quantizer's kernels (quant_layer.cu,
// quant_block.cu). The reductions add in a fixed order, so a kernel's result does not depend
// on scheduling: the GPU-vs-CPU tests compare these sums closely.
#include <cuda_runtime.h>

#include <cstdint>

namespace aqlm::cuda::quant_kernels {

constexpr int kBlock = 256;

inline unsigned blocks_for(int64_t n, int threads = kBlock) { return unsigned((n + threads - 1) / threads); }

// Sum of v over the block (blockDim.x a power of two, `shared` holds blockDim.x doubles),
// returned to every thread; a tree in shared memory.
__device__ inline double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();
  return total;
}

// Sum of v over the warp, returned to every lane.
__device__ inline double warp_sum(double v) {
  for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
  return v;
}

}  // namespace aqlm::cuda::quant_kernels
