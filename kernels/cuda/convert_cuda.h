#pragma once
// Element conversions and the embedding lookup of the CUDA inference engine.
// - convert: fp32 / fp16 / bf16 -> fp32 / fp16 / bf16 on the device, round to nearest even
//   (bit-identical to core/common/half.h for every non-NaN input), used to turn weights into
//   the engine's activation type as they are uploaded.
// - embedding_lookup: x[t, :] = float(table[ids[t], :]), the first step of a forward pass.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/aqlm_gemv_cuda.h"

namespace aqlm::cuda {

enum class ElementType : uint8_t { F32, F16, BF16 };
size_t element_size(ElementType t);
inline ElementType element_type(DType act) { return act == DType::BF16 ? ElementType::BF16 : ElementType::F16; }

// dst[i] = src[i] for i < n, converted from `from` to `to`. Device pointers, asynchronous.
void convert(const void* src, ElementType from, void* dst, ElementType to, size_t n, cudaStream_t stream = nullptr);

// x [n, dim] fp32 = rows ids[t] of table [rows, dim] (elements of `act`). `ids` is a device
// array of n valid row indices (the caller checks them). Asynchronous on `stream`.
void embedding_lookup(const void* table, DType act, const int32_t* ids, int n, int64_t dim, float* x,
                      cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
