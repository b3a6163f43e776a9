#pragma once
// Random inputs for the dense kernel tests (fixed seeds: a failure reproduces).
#include <cstdint>
#include <random>
#include <vector>

namespace aqlm::cpu::test {

inline std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace aqlm::cpu::test
