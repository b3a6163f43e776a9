// Instances of the lookup-table gemv kernel (B <= 8, 1..4 codebooks).
#include "kernels/cuda/aqlm_gemv_launch.cuh"

namespace aqlm::cuda::detail {
AQLM_GEMV_INSTANCE(Mode::Lut, 1)
AQLM_GEMV_INSTANCE(Mode::Lut, 2)
AQLM_GEMV_INSTANCE(Mode::Lut, 3)
AQLM_GEMV_INSTANCE(Mode::Lut, 4)
}  // namespace aqlm::cuda::detail
