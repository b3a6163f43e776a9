#include "kernels/cuda/aqlm_gemv_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "core/common/error.h"
#include "kernels/cuda/aqlm_gemv_kernels.cuh"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {

using detail::Mode;

namespace detail {
// Defined in aqlm_gemv_launch.cuh, instantiated in aqlm_gemv_lut.cu and aqlm_gemv_direct.cu.
template <Mode MODE, int M>
void launch_tokens(const AqlmView& w, const void* x, void* y, int n, DType act, AqlmGemvWorkspace& ws,
                   cudaStream_t stream);
}  // namespace detail
using detail::launch_tokens;

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

using detail::codeword_to_float;
using detail::to_act;

// ---------------------------------------------------------------------------------------
// Dequantization: one thread per (row, group), eight outputs as one 16-byte store.

struct DequantParams {
  const uint8_t* codes;
  const uint4* codebooks;
  const uint16_t* scales;
  uint4* out;  // [rows, groups] of 8 values
  int64_t rows;
  int groups;
  int M;
  int nbits;
  uint32_t mask;
  int code_bytes;
  bool bf16;
};

__global__ void __launch_bounds__(256) aqlm_dequantize_kernel(const DequantParams p) {
  const int64_t total = p.rows * p.groups;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = idx / p.groups;
    float w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int m = 0; m < p.M; ++m) {
      const int64_t ci = idx * p.M + m;
      const uint32_t raw = p.code_bytes == 1 ? uint32_t(__ldg(p.codes + ci))
                                             : uint32_t(__ldg(reinterpret_cast<const uint16_t*>(p.codes) + ci));
      float v[8];
      codeword_to_float(__ldg(p.codebooks + (int64_t(m) << p.nbits) + (raw & p.mask)), v);
#pragma unroll
      for (int k = 0; k < 8; ++k) w[k] += v[k];
    }
    const float s = __half2float(__ushort_as_half(__ldg(p.scales + row)));
    uint32_t packed[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      packed[k] = uint32_t(to_act(w[2 * k] * s, p.bf16)) | (uint32_t(to_act(w[2 * k + 1] * s, p.bf16)) << 16);
    p.out[idx] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
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
  const bool lut = w.nbits <= 8 && w.code_bytes == 1;
  const int pass = lut ? detail::kLutMaxTokens : 8;
  for (int t0 = 0; t0 < n; t0 += pass) {
    const int chunk = std::min(pass, n - t0);
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
  aqlm_dequantize_kernel<<<unsigned(grid), 256, 0, stream>>>(p);
  check_launch("AQLM dequantize");
}

}  // namespace aqlm::cuda
