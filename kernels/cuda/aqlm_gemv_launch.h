#pragma once
// Host-side entry points of the AQLM gemv kernel instances (internal to kernels/cuda):
// the lookup-table kernel per token count (aqlm_gemv_lut_t{1,2,4}.cu) and the gather kernel
// (aqlm_gemv_gather.cu), so nvcc compiles the instances in parallel; aqlm_gemv_cuda.cu decides
// the geometry and dispatches.
#include <cuda_runtime_api.h>

#include <cstddef>

namespace aqlm::cuda::detail {

struct LutParams;
struct GatherParams;

// Lookup-table kernel for T tokens (1, 2 or 4) and K slabs per set (1, 2, 4, 8 with
// K * T <= 8); its shared memory (tables, code ring) before the codebook and x staging.
int lut_fixed_smem_bytes(int T, int K);
void launch_lut_t1(int K, const LutParams& p, int grid, size_t smem, cudaStream_t stream);
void launch_lut_t2(int K, const LutParams& p, int grid, size_t smem, cudaStream_t stream);
void launch_lut_t4(int K, const LutParams& p, int grid, size_t smem, cudaStream_t stream);

// Gather kernel for M codebooks (1 or 2) and T tokens (1, 2, 4 or 8); groups per slab of an
// instance (the reduction needs the slab count before the launch).
int gather_groups_per_slab(int T);
int gather_tile_rows(int M, int T);
void launch_gather(int M, int T, const GatherParams& p, cudaStream_t stream);

// Raises a kernel's dynamic shared-memory limit to `bytes` once per device (and, when
// `carveout` >= 0, sets its preferred shared-memory carveout in percent).
void allow_dynamic_smem(const void* kernel, int bytes, int carveout = -1);

}  // namespace aqlm::cuda::detail
