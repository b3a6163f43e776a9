#pragma once
// Device helpers shared by the AQLM CUDA kernels (lookup-table, gather, reduction, dequantize).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace aqlm::cuda::detail {

constexpr unsigned kFullMask = 0xffffffffu;

// Eight activations (fp16 or bf16, 16-byte aligned) as floats.
__device__ __forceinline__ void load_x8(const uint16_t* src, bool bf16, float (&v)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (bf16) {
      v[2 * k] = __uint_as_float(w[k] << 16);
      v[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    } else {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[k]));
      v[2 * k] = f.x;
      v[2 * k + 1] = f.y;
    }
  }
}

// One codeword: eight fp16 values as floats.
__device__ __forceinline__ void codeword_to_float(const uint4& raw, float (&v)[8]) {
  const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[k]));
    v[2 * k] = f.x;
    v[2 * k + 1] = f.y;
  }
}

__device__ __forceinline__ uint16_t to_act(float v, bool bf16) {
  return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
}

__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Programmatic dependent launch (sm_90): the producer lets its dependent grid be scheduled
// early; the dependent waits until the producer has finished and its writes are visible.
// Without a dependent launch (or before sm_90) both are no-ops.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_producer() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Shared-memory accesses by 32-bit shared-window address (kept in 32-bit registers).
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
template <int T>
__device__ __forceinline__ void lds(uint32_t addr, float (&v)[T]) {
  if constexpr (T == 1) {
    asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v[0]) : "r"(addr));
  } else if constexpr (T == 2) {
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(v[0]), "=f"(v[1]) : "r"(addr));
  } else {
    static_assert(T == 4, "entries of 1, 2 or 4 floats");
    asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v[0]), "=f"(v[1]), "=f"(v[2]), "=f"(v[3]) : "r"(addr));
  }
}
template <int T>
__device__ __forceinline__ void sts(uint32_t addr, const float (&v)[T]) {
  if constexpr (T == 1) {
    asm volatile("st.shared.f32 [%0], %1;" ::"r"(addr), "f"(v[0]) : "memory");
  } else if constexpr (T == 2) {
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};" ::"r"(addr), "f"(v[0]), "f"(v[1]) : "memory");
  } else {
    static_assert(T == 4, "entries of 1, 2 or 4 floats");
    asm volatile("st.shared.v4.f32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "f"(v[0]), "f"(v[1]), "f"(v[2]), "f"(v[3])
                 : "memory");
  }
}

}  // namespace aqlm::cuda::detail
