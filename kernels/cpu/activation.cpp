#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/vec_math.h"

namespace aqlm::cpu {

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = simd::exp(_mm256_xor_ps(g, sign));  // e^-g
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

static float max_of(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float best = simd::hmax(m);
  for (; i < n; ++i) best = x[i] > best ? x[i] : best;
  return best;
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float mx = max_of(x, n);
  const __m256 mv = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  double sum = simd::hsum(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
  i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= float(1.0 / sum);
}

double logsumexp(const float* x, int64_t n) {
  if (n <= 0) return -std::numeric_limits<double>::infinity();
  const float mx = max_of(x, n);
  const __m256 mv = _mm256_set1_ps(mx);
  // Partial sums of 8 lanes are flushed to double every 1024 elements so a 150k-entry
  // vocabulary does not lose digits in float.
  double sum = 0;
  int64_t i = 0;
  while (i + 8 <= n) {
    __m256 acc = _mm256_setzero_ps();
    const int64_t end = std::min<int64_t>(n & ~int64_t(7), i + 1024);
    for (; i < end; i += 8) acc = _mm256_add_ps(acc, simd::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
    sum += simd::hsum(acc);
  }
  for (; i < n; ++i) sum += std::exp(double(x[i]) - mx);
  return double(mx) + std::log(sum);
}

void exp_array(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, simd::exp(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) out[i] = std::exp(x[i]);
}

}  // namespace aqlm::cpu
