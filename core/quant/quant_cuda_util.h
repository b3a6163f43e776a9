#pragma once
// Host-side helpers shared by the GPU quantization backend (aqlm_quantizer_cuda.cpp,
// block_finetuner_cuda.cpp): torch's Adam over device parameters, and the inverted index of
// frozen codes that turns d loss / d W' into codebook gradients. Only with AQLM_HAVE_CUDA.
#ifdef AQLM_HAVE_CUDA

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/quant/adam.h"
#include "kernels/cuda/quant_cuda_common.h"
#include "kernels/cuda/quant_layer_cuda.h"

namespace aqlm {

// Bits of the largest key `values - 1` (at least 1), for radix sorts.
inline int key_bits(int64_t values) {
  int bits = 1;
  while ((int64_t(1) << bits) < values) ++bits;
  return bits;
}

// adam.cpp's update on device parameters; moments start at zero and persist across steps.
class CudaAdam {
 public:
  explicit CudaAdam(const AdamOptions& o) : options_(o) { [[maybe_unused]] const Adam check(o); }
  void add(float* value, const float* grad, size_t n) {
    Param p{value, grad, n, cuda::DeviceArray<float>(n, "Adam moments"), cuda::DeviceArray<float>(n, "Adam moments")};
    p.m.zero();
    p.v.zero();
    params_.push_back(std::move(p));
  }
  void step() {
    ++step_;
    const double b1 = options_.beta1, b2 = options_.beta2;
    const double step_size = options_.learning_rate / (1.0 - std::pow(b1, double(step_)));
    const double v_correction = 1.0 / std::sqrt(1.0 - std::pow(b2, double(step_)));
    for (Param& p : params_)
      cuda::adam_step(p.value, p.grad, p.m.data(), p.v.data(), p.n, b1, b2, step_size, v_correction, options_.eps);
  }
  bool empty() const { return params_.empty(); }

 private:
  struct Param {
    float* value;
    const float* grad;
    size_t n;
    cuda::DeviceArray<float> m, v;
  };
  AdamOptions options_;
  int64_t step_ = 0;
  std::vector<Param> params_;
};

// For frozen codes: the places of every codeword (m, k), sorted, as offsets into `places`.
struct CudaCodeIndex {
  cuda::DeviceArray<uint32_t> keys, values, sorted_keys, places;
  cuda::DeviceArray<int64_t> offsets;

  void build(const cuda::LayerDims& d, const uint16_t* codes, cuda::SortScratch& sort) {
    const int64_t places_count = d.out * d.J(), entries = places_count * d.M, words = int64_t(d.M) * d.K;
    keys.resize(size_t(entries), "the code index");
    values.resize(size_t(entries), "the code index");
    sorted_keys.resize(size_t(entries), "the code index");
    places.resize(size_t(entries), "the code index");
    offsets.resize(size_t(words + 1), "the code index");
    cuda::code_keys(codes, places_count, d.M, d.K, keys.data(), values.data());
    cuda::sort_pairs(keys.data(), sorted_keys.data(), values.data(), places.data(), entries, key_bits(words), sort);
    cuda::segment_offsets(sorted_keys.data(), entries, words, offsets.data());
    keys.release();  // only the sorted places and offsets are read afterwards
    values.release();
    sorted_keys.release();
  }
};

}  // namespace aqlm

#endif  // AQLM_HAVE_CUDA
