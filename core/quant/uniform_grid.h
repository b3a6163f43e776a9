#pragma once
// The uniform b-bit grid of RTN and GPTQ: per group of weights an asymmetric min-max range
// [min(x_min, 0), max(x_max, 0)] (the GPTQ quantizer's convention: the range always holds 0,
// and an all-zero group gets [-1, 1]), scale = range / (2^b - 1), an integer zero point, and
//   q = clamp(round(x / scale) + zero, 0, 2^b - 1),  x' = scale * (q - zero)
// with round-half-to-even, computed in the scalar type T (float for RTN, double for GPTQ).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace aqlm {

template <typename T>
struct UniformGrid {
  T scale = 1, zero = 0, max_level = 1;

  static UniformGrid fit(const T* x, int64_t n, int64_t stride, int bits) {
    T lo = 0, hi = 0;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, x[i * stride]);
      hi = std::max(hi, x[i * stride]);
    }
    if (lo == 0 && hi == 0) {
      lo = -1;
      hi = 1;
    }
    UniformGrid g;
    g.max_level = T((int64_t(1) << bits) - 1);
    g.scale = (hi - lo) / g.max_level;
    g.zero = std::nearbyint(-lo / g.scale);
    return g;
  }
  T quantize(T x) const {
    const T q = std::clamp(T(std::nearbyint(x / scale) + zero), T(0), max_level);
    return scale * (q - zero);
  }
};

// A dense reconstruction from a scalar quantizer (RTN, GPTQ).
struct DenseQuantResult {
  std::vector<float> weight;  // [out, in], dequantized
  double bits_per_parameter = 0;
};

// bits + (16-bit scale + bits-bit zero point per group) / group, plus, with act-order groups,
// a 32-bit group index per input column (GPTQ's g_idx). group_size 0: one group per row.
inline double uniform_bits_per_parameter(int64_t out, int64_t in, int bits, int64_t group_size, bool group_index) {
  const int64_t gs = group_size > 0 ? group_size : in;
  const double groups_per_row = double((in + gs - 1) / gs);
  const double total = double(out) * double(in) * bits + double(out) * groups_per_row * (16.0 + bits) +
                       (group_index ? 32.0 * double(in) : 0.0);
  return total / (double(out) * double(in));
}

}  // namespace aqlm
