#pragma once
// What the CPU running us can do; kernels built for x86-64-v3 refuse to run without it.
namespace aqlm {
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, avx512f = false;
};
const CpuFeatures& cpu_features();
}  // namespace aqlm
