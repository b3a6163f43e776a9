#include "kernels/cuda/convert_cuda.h"

#include <algorithm>

#include "core/common/error.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/engine_common.cuh"

namespace aqlm::cuda {
namespace {

using engine::from_float;
using engine::to_float;

template <typename From, typename To>
__global__ void __launch_bounds__(256) convert_kernel(const From* src, To* dst, size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<To>(to_float(src[i]));
}

// One block per token; threads stride over the row.
template <typename T>
__global__ void __launch_bounds__(256) embedding_kernel(const T* table, const int32_t* ids, int64_t dim, float* x) {
  const T* row = table + int64_t(ids[blockIdx.x]) * dim;
  float* out = x + int64_t(blockIdx.x) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) out[i] = to_float(row[i]);
}

unsigned grid_for(size_t n) {
  return unsigned(std::min<size_t>((n + 255) / 256, size_t(device_properties().sm_count) * 32));
}

template <typename From>
void convert_from(const From* src, void* dst, ElementType to, size_t n, cudaStream_t stream) {
  const unsigned grid = grid_for(n);
  switch (to) {
    case ElementType::F32: convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<float*>(dst), n); break;
    case ElementType::F16: convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<__half*>(dst), n); break;
    case ElementType::BF16: convert_kernel<<<grid, 256, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n); break;
  }
  check_launch("element conversion");
}

}  // namespace

size_t element_size(ElementType t) { return t == ElementType::F32 ? 4 : 2; }

void convert(const void* src, ElementType from, void* dst, ElementType to, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  AQLM_CHECK(src && dst, "element conversion: missing source or destination buffer");
  switch (from) {
    case ElementType::F32: return convert_from(static_cast<const float*>(src), dst, to, n, stream);
    case ElementType::F16: return convert_from(static_cast<const __half*>(src), dst, to, n, stream);
    case ElementType::BF16: return convert_from(static_cast<const __nv_bfloat16*>(src), dst, to, n, stream);
  }
}

void embedding_lookup(const void* table, DType act, const int32_t* ids, int n, int64_t dim, float* x,
                      cudaStream_t stream) {
  if (n == 0) return;
  AQLM_CHECK(n > 0 && dim > 0, "embedding lookup: ", n, " tokens of width ", dim);
  if (act == DType::BF16)
    embedding_kernel<<<unsigned(n), 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(table), ids, dim, x);
  else
    embedding_kernel<<<unsigned(n), 256, 0, stream>>>(static_cast<const __half*>(table), ids, dim, x);
  check_launch("embedding lookup");
}

}  // namespace aqlm::cuda
