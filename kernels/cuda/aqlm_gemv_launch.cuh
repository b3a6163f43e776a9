#pragma once
// Host-side launch of the AQLM gemv kernels (aqlm_gemv_kernels.cuh). Instantiated for each
// (mode, codebooks) in aqlm_gemv_lut.cu / aqlm_gemv_direct.cu so nvcc builds them in
// parallel; aqlm_gemv_cuda.cu dispatches.
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/aqlm_gemv_kernels.cuh"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda::detail {

// Raises a kernel's dynamic shared-memory limit once per device.
// Gather kernels also ask for the smallest shared-memory carveout that fits two blocks, so
// L1 keeps more of the codebook.
template <typename Kernel>
void allow_smem(Kernel kernel, int bytes, bool prefer_l1) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> done;
  int device = 0;
  check(cudaGetDevice(&device), "reading the current CUDA device");
  const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), device);
  std::lock_guard<std::mutex> lock(mutex);
  if (done.count(key)) return;
  AQLM_CHECK(bytes <= device_properties().max_smem_per_block, "the AQLM gemv kernel needs ", bytes,
             " bytes of shared memory but this GPU gives a block at most ", device_properties().max_smem_per_block);
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "raising the AQLM gemv kernel's shared-memory limit");
  if (prefer_l1)
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 30),
          "setting the AQLM gemv kernel's shared-memory carveout");
  done.insert(key);
}

// Largest cp.async width that keeps every copy of a slab's row aligned and inside the row.
inline int copy_width(const AqlmView& w, int slab_row_bytes) {
  const int64_t pitch = w.groups() * w.num_codebooks * w.code_bytes;
  const uintptr_t base = reinterpret_cast<uintptr_t>(w.codes);
  for (int v : {16, 8, 4})
    if (pitch % v == 0 && base % v == 0 && slab_row_bytes % v == 0) return v;
  return 1;
}

template <Mode MODE, int M, int T>
void launch_gemv(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& ws,
                 cudaStream_t stream) {
  using S = Shape<MODE, M, T>;
  GemvParams p{};
  p.codes = static_cast<const uint8_t*>(w.codes);
  p.codebooks = reinterpret_cast<const uint4*>(w.codebooks);
  p.scales = w.scales;
  p.x = static_cast<const uint16_t*>(x);
  p.y = static_cast<uint16_t*>(y);
  p.out = int(w.out);
  p.groups = int(w.groups());
  p.n = n;
  p.nbits = w.nbits;
  p.mask = w.code_mask();
  p.slabs = int((w.groups() + S::G - 1) / S::G);
  p.tiles = int((w.out + S::TILE_ROWS - 1) / S::TILE_ROWS);
  p.units = int64_t(p.slabs) * p.tiles;
  AQLM_CHECK(p.units < (int64_t(1) << 31), "AQLM gemv: a ", w.out, " x ", w.in, " layer has too many work units");
  p.vec = copy_width(w, S::ROW_BYTES);
  p.bf16 = act == DType::BF16;
  if (p.slabs > 1) {
    ws.reserve(size_t(p.slabs) * size_t(w.out) * T, size_t(p.tiles));
    p.partial = ws.partial();
    p.counters = ws.counters();
  }
  const auto kernel = detail::aqlm_gemv_kernel<MODE, M, T>;
  allow_smem(kernel, S::SMEM_BYTES, MODE == Mode::Direct);
  const int64_t grid = std::min<int64_t>(p.units, int64_t(device_properties().sm_count) * S::kBlocksPerSm);
  kernel<<<unsigned(grid), detail::kThreads, S::SMEM_BYTES, stream>>>(p);
  check_launch("AQLM gemv");
}

template <Mode MODE, int M>
void launch_tokens(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& ws,
                   cudaStream_t stream) {
  if (n == 1) return launch_gemv<MODE, M, 1>(w, x, y, n, act, ws, stream);
  if (n == 2) return launch_gemv<MODE, M, 2>(w, x, y, n, act, ws, stream);
  if (n <= 4) return launch_gemv<MODE, M, 4>(w, x, y, n, act, ws, stream);
  if constexpr (MODE != Mode::Lut) return launch_gemv<MODE, M, 8>(w, x, y, n, act, ws, stream);
  fail("AQLM gemv: the lookup-table kernel takes at most ", kLutMaxTokens, " tokens per pass, not ", n);
}

// One instantiation per (mode, codebooks), defined in aqlm_gemv_lut.cu / aqlm_gemv_direct.cu.
#define AQLM_GEMV_INSTANCE(MODE, M)                                                                             \
  template void launch_tokens<MODE, M>(const AqlmView&, const void*, void*, int, DType, AqlmGemvWorkspace&, \
                                       cudaStream_t);

}  // namespace aqlm::cuda::detail
