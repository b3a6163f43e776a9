#pragma once
// Seeded random numbers for the quantizers, with the same sequence on every platform
// (std:: distributions are implementation-defined, so they are not used).
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace aqlm {

class QuantRandom {
 public:
  explicit QuantRandom(uint64_t seed) : engine_(seed) {}
  // A child stream for one purpose (e.g. "epoch 3, beam order"), independent of how many
  // numbers the parent has drawn.
  static QuantRandom derive(uint64_t seed, uint64_t purpose, uint64_t index = 0) {
    return QuantRandom(mix(mix(seed ^ 0x9e3779b97f4a7c15ull) ^ mix(purpose + 0x632be59bd9b4e019ull) ^ mix(index)));
  }

  uint64_t next() { return engine_(); }
  double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t n) { return uint64_t(uniform() * double(n)) % n; }
  double normal() {  // Box-Muller, one value per call
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(below(i))]);
  }
  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
    shuffle(p);
    return p;
  }

 private:
  static uint64_t mix(uint64_t z) {  // splitmix64 finaliser
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::mt19937_64 engine_;  // the engine's sequence is fixed by the standard
};

}  // namespace aqlm
