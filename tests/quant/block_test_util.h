#pragma once
// Helpers shared by the block fine-tuning tests: finite differences, error norms, fixtures.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_paths.h"

namespace aqlm::test {

// Central differences of f() w.r.t. each entry of v (restored afterwards). With h = 1e-5 in
// double the truncation error is ~h^2 |f'''| ~ 1e-10 and the rounding error ~1e-16 |f| / h
// ~ 1e-10 relative: far below the 1e-6 bar the tests set on analytic gradients.
inline std::vector<double> numeric_gradient(std::vector<double>& v, const std::function<double()>& f,
                                            double h = 1e-5) {
  std::vector<double> g(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double saved = v[i];
    v[i] = saved + h;
    const double up = f();
    v[i] = saved - h;
    const double down = f();
    v[i] = saved;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

// ||a - ref|| / ||ref|| (Euclidean), the error measure of gradient checks.
template <typename A, typename B>
double relative_error(const A& a, const B& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff += (double(a[i]) - double(ref[i])) * (double(a[i]) - double(ref[i]));
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-300);
}

// max |a - ref| / max |ref|, the error measure of forward comparisons.
template <typename A, typename B>
double max_relative_error(const A& a, const B& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(ref[i])));
    norm = std::max(norm, std::abs(double(ref[i])));
  }
  return diff / std::max(norm, 1e-300);
}

inline std::vector<double> random_vector(size_t n, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = normal(rng);
  return v;
}

template <typename T>
std::vector<T> cast_vector(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline nlohmann::json load_fixture(const std::string& name) {
  const auto path = source_path("tests/fixtures/quant/" + name);
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing fixture " + path.string() + " (run scripts/reference/block_reference.py)");
  return nlohmann::json::parse(in);
}

}  // namespace aqlm::test
