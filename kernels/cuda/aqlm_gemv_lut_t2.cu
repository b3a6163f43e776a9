// Instances of the lookup-table gemv kernel for 2 tokens (see aqlm_gemv_lut.cuh).
#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_launch.h"
#include "kernels/cuda/aqlm_gemv_lut.cuh"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda::detail {

void launch_lut_t2(int K, const LutParams& p, int grid, size_t smem, cudaStream_t stream) {
  if (K == 1) return launch_lut_instance<2, 1>(p, grid, smem, stream);
  if (K == 2) return launch_lut_instance<2, 2>(p, grid, smem, stream);
  if (K == 4) return launch_lut_instance<2, 4>(p, grid, smem, stream);
  fail("AQLM gemv: no lookup-table kernel for 2 tokens and ", K, " slabs per set");
}

}  // namespace aqlm::cuda::detail
