// Instances of the gather gemv kernel (B > 8), see aqlm_gemv_gather.cuh.
#include <algorithm>

#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_gather.cuh"
#include "kernels/cuda/aqlm_gemv_launch.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda::detail {

namespace {

template <int M, int T>
void launch_instance(const GatherParams& p, cudaStream_t stream) {
  using S = GatherShape<M, T>;
  const auto kernel = aqlm_gather_kernel<M, T>;
  // The smallest shared-memory carveout that fits two blocks, so L1 keeps more of the codebook.
  allow_dynamic_smem(reinterpret_cast<const void*>(kernel), S::SMEM_BYTES, 30);
  const int grid = std::min(p.units, device_properties().sm_count * S::kBlocksPerSm);
  kernel<<<unsigned(grid), kGatherThreads, S::SMEM_BYTES, stream>>>(p);
  check_launch("AQLM gemv");
}

template <int M>
void launch_tokens(int T, const GatherParams& p, cudaStream_t stream) {
  switch (T) {
    case 1: return launch_instance<M, 1>(p, stream);
    case 2: return launch_instance<M, 2>(p, stream);
    case 4: return launch_instance<M, 4>(p, stream);
    default: return launch_instance<M, 8>(p, stream);
  }
}

}  // namespace

int gather_groups_per_slab(int T) { return T <= 2 ? GatherShape<1, 1>::G : GatherShape<1, 4>::G; }

int gather_tile_rows(int M, int T) {
  switch (M * 16 + T) {
    case 16 + 1: return GatherShape<1, 1>::TILE_ROWS;
    case 16 + 2: return GatherShape<1, 2>::TILE_ROWS;
    case 16 + 4: return GatherShape<1, 4>::TILE_ROWS;
    case 16 + 8: return GatherShape<1, 8>::TILE_ROWS;
    case 32 + 1: return GatherShape<2, 1>::TILE_ROWS;
    case 32 + 2: return GatherShape<2, 2>::TILE_ROWS;
    case 32 + 4: return GatherShape<2, 4>::TILE_ROWS;
    default: return GatherShape<2, 8>::TILE_ROWS;
  }
}

void launch_gather(int M, int T, const GatherParams& p, cudaStream_t stream) {
  if (M == 1) return launch_tokens<1>(T, p, stream);
  AQLM_CHECK(M == 2, "AQLM gemv: the gather kernel takes 1 or 2 codebooks, not ", M);
  launch_tokens<2>(T, p, stream);
}

}  // namespace aqlm::cuda::detail
