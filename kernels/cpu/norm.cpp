#include "kernels/cpu/norm.h"

#include <cmath>

#include "kernels/cpu/vec_math.h"

namespace aqlm::cpu {

void rmsnorm(const float* x, const float* weight, float* y, int64_t dim, float eps) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  // The sum of squares is finished in double: with thousands of terms the float tail
  // would otherwise dominate the error.
  double sum = simd::hsum(acc);
  for (; i < dim; ++i) sum += double(x[i]) * x[i];
  const float inv = float(1.0 / std::sqrt(sum / double(dim) + double(eps)));
  const __m256 inv_v = _mm256_set1_ps(inv);
  i = 0;
  for (; i + 8 <= dim; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv_v), _mm256_loadu_ps(weight + i)));
  for (; i < dim; ++i) y[i] = x[i] * inv * weight[i];
}

}  // namespace aqlm::cpu
