#include "kernels/cuda/aqlm_gemv_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_kernels.cuh"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {

using detail::DequantParams;
using detail::GemvParams;
using detail::Mode;
using detail::Shape;

AqlmGemvWorkspace::~AqlmGemvWorkspace() {
  device_free(partial_);
  device_free(counters_);
}

void AqlmGemvWorkspace::reserve(size_t partial_floats, size_t counters) {
  if (partial_floats > partial_capacity_) {
    device_free(partial_);
    partial_ = nullptr;
    partial_capacity_ = 0;
    partial_ = static_cast<float*>(device_alloc(partial_floats * sizeof(float), "the AQLM gemv workspace"));
    partial_capacity_ = partial_floats;
  }
  if (counters > counter_capacity_) {
    device_free(counters_);
    counters_ = nullptr;
    counter_capacity_ = 0;
    counters_ = static_cast<unsigned*>(device_alloc(counters * sizeof(unsigned), "the AQLM gemv workspace"));
    check(cudaMemset(counters_, 0, counters * sizeof(unsigned)), "clearing the AQLM gemv workspace");
    counter_capacity_ = counters;
  }
}

void check_cuda_aqlm_view(const AqlmView& w, const char* what) {
  check_aqlm_view(w, what);
  AQLM_CHECK(w.group_size == 8, what, ": the CUDA AQLM kernels need in_group_size 8, not ", w.group_size);
  if (w.nbits <= 8 && w.code_bytes == 1) {
    AQLM_CHECK(w.num_codebooks <= 4, what, ": the CUDA AQLM kernels take at most 4 codebooks of 8 bits, not ",
               w.num_codebooks);
  } else {
    AQLM_CHECK(w.num_codebooks <= 2, what, ": the CUDA AQLM kernels take at most 2 codebooks of ", w.nbits,
               " bits, not ", w.num_codebooks);
  }
  AQLM_CHECK(reinterpret_cast<uintptr_t>(w.codebooks) % 16 == 0, what,
             ": the codebooks must start at a 16-byte aligned device address");
}

namespace {

// Raises a kernel's dynamic shared-memory limit once per device.
template <typename Kernel>
void allow_smem(Kernel kernel, int bytes) {
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
  done.insert(key);
}

// Largest cp.async width that keeps every copy of a slab's row aligned and inside the row.
int copy_width(const AqlmView& w, int slab_row_bytes) {
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
  p.vec = copy_width(w, S::ROW_BYTES);
  p.bf16 = act == DType::BF16;
  if (p.slabs > 1) {
    ws.reserve(size_t(p.slabs) * size_t(w.out) * T, size_t(p.tiles));
    p.partial = ws.partial();
    p.counters = ws.counters();
  }
  const auto kernel = detail::aqlm_gemv_kernel<MODE, M, T>;
  allow_smem(kernel, S::SMEM_BYTES);
  const int per_sm = MODE == Mode::Direct ? 2 : 1;
  const int64_t grid = std::min<int64_t>(p.units, int64_t(device_properties().sm_count) * per_sm);
  kernel<<<unsigned(grid), detail::kThreads, S::SMEM_BYTES, stream>>>(p);
  check_launch("AQLM gemv");
}

template <Mode MODE, int M>
void launch_tokens(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& ws,
                   cudaStream_t stream) {
  if (n == 1) return launch_gemv<MODE, M, 1>(w, x, y, n, act, ws, stream);
  if (n == 2) return launch_gemv<MODE, M, 2>(w, x, y, n, act, ws, stream);
  if (n <= 4) return launch_gemv<MODE, M, 4>(w, x, y, n, act, ws, stream);
  return launch_gemv<MODE, M, 8>(w, x, y, n, act, ws, stream);
}

void launch_chunk(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& ws,
                  cudaStream_t stream, DirectVariant variant) {
  if (w.nbits <= 8 && w.code_bytes == 1) {
    switch (w.num_codebooks) {
      case 1: return launch_tokens<Mode::Lut, 1>(w, x, y, n, act, ws, stream);
      case 2: return launch_tokens<Mode::Lut, 2>(w, x, y, n, act, ws, stream);
      case 3: return launch_tokens<Mode::Lut, 3>(w, x, y, n, act, ws, stream);
      default: return launch_tokens<Mode::Lut, 4>(w, x, y, n, act, ws, stream);
    }
  }
  if (w.num_codebooks == 1) {
    if (variant == DirectVariant::SmemHead) return launch_tokens<Mode::DirectHead, 1>(w, x, y, n, act, ws, stream);
    return launch_tokens<Mode::Direct, 1>(w, x, y, n, act, ws, stream);
  }
  return launch_tokens<Mode::Direct, 2>(w, x, y, n, act, ws, stream);
}

}  // namespace

void aqlm_gemv(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& workspace,
               cudaStream_t stream, DirectVariant variant) {
  check_cuda_aqlm_view(w, "AQLM gemv");
  AQLM_CHECK(n >= 1, "AQLM gemv: token count is ", n, " (expected at least 1)");
  AQLM_CHECK(x && y, "AQLM gemv: missing input or output buffer");
  AQLM_CHECK(reinterpret_cast<uintptr_t>(x) % 16 == 0, "AQLM gemv: the input must start at a 16-byte aligned address");
  AQLM_CHECK(w.out <= (int64_t(1) << 30) && w.groups() <= (int64_t(1) << 27), "AQLM gemv: a ", w.out, " x ", w.in,
             " layer is larger than the CUDA kernels index");
  const size_t elem = 2;
  for (int t0 = 0; t0 < n; t0 += 8) {
    const int chunk = std::min(8, n - t0);
    launch_chunk(w, static_cast<const uint8_t*>(x) + size_t(t0) * size_t(w.in) * elem,
                 static_cast<uint8_t*>(y) + size_t(t0) * size_t(w.out) * elem, chunk, act, workspace, stream,
                 variant);
  }
}

void aqlm_dequantize(const AqlmView& w, void* out, DType act, cudaStream_t stream) {
  check_cuda_aqlm_view(w, "AQLM dequantize");
  AQLM_CHECK(out && reinterpret_cast<uintptr_t>(out) % 16 == 0,
             "AQLM dequantize: the output must be a 16-byte aligned device buffer");
  DequantParams p{};
  p.codes = static_cast<const uint8_t*>(w.codes);
  p.codebooks = reinterpret_cast<const uint4*>(w.codebooks);
  p.scales = w.scales;
  p.out = static_cast<uint4*>(out);
  p.rows = w.out;
  p.groups = int(w.groups());
  p.M = w.num_codebooks;
  p.nbits = w.nbits;
  p.mask = w.code_mask();
  p.code_bytes = w.code_bytes;
  p.bf16 = act == DType::BF16;
  const int64_t total = w.out * w.groups();
  const int64_t grid = std::min<int64_t>((total + 255) / 256, int64_t(device_properties().sm_count) * 16);
  detail::aqlm_dequantize_kernel<<<unsigned(grid), 256, 0, stream>>>(p);
  check_launch("AQLM dequantize");
}

}  // namespace aqlm::cuda
