#pragma once
// Greedy token choice on the device: the index of the largest of n fp32 logits, the first
// one on ties (what the CPU sampler's std::max_element picks), so the generator's greedy
// path copies 4 bytes back instead of the whole logits row.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace aqlm::cuda {

// *out = argmax(x[0..n)). NaNs are never chosen (an all-NaN row gives 0). Asynchronous.
void argmax(const float* x, int64_t n, int32_t* out, cudaStream_t stream = nullptr);

}  // namespace aqlm::cuda
