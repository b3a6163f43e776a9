// Instances of the gather gemv kernel (B > 8, or 8-bit codes stored as int16).
#include "kernels/cuda/aqlm_gemv_launch.cuh"

namespace aqlm::cuda::detail {
AQLM_GEMV_INSTANCE(Mode::Direct, 1)
AQLM_GEMV_INSTANCE(Mode::Direct, 2)
AQLM_GEMV_INSTANCE(Mode::DirectHead, 1)
}  // namespace aqlm::cuda::detail
