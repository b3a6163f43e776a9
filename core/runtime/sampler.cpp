#include "core/runtime/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/common/error.h"

namespace aqlm {
namespace {

// Probabilities are sorted only as far as needed: the top kPartial first, everything
// when the top-p mass is not reached within them.
constexpr size_t kPartial = 1024;

bool more_likely(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// Uniform double in [0, 1) from 53 random bits (the same on every standard library).
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * (1.0 / 9007199254740992.0); }

}  // namespace

void SamplerConfig::validate() const {
  AQLM_CHECK(std::isfinite(temperature) && temperature >= 0.0f, "temperature ", temperature, " must be >= 0");
  AQLM_CHECK(top_k >= 0, "top-k ", top_k, " must be >= 0");
  AQLM_CHECK(top_p > 0.0f && top_p <= 1.0f, "top-p ", top_p, " must be in (0, 1]");
  AQLM_CHECK(min_p >= 0.0f && min_p <= 1.0f, "min-p ", min_p, " must be in [0, 1]");
  AQLM_CHECK(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f, "repetition penalty ", repetition_penalty,
             " must be > 0");
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> history, float penalty) {
  if (penalty == 1.0f) return;
  std::vector<int32_t> seen(history.begin(), history.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (id < 0 || size_t(id) >= logits.size()) continue;
    float& l = logits[size_t(id)];
    l = l < 0 ? l * penalty : l / penalty;
  }
}

Sampler::Sampler(const SamplerConfig& config) : config_(config), rng_(config.seed) { config_.validate(); }

void Sampler::reseed(uint64_t seed) {
  config_.seed = seed;
  rng_.seed(seed);
}

void Sampler::filter(std::span<const float> logits, std::span<const int32_t> history,
                     std::vector<std::pair<float, int32_t>>& kept) const {
  AQLM_CHECK(!logits.empty(), "sampler: empty logits");
  work_.assign(logits.begin(), logits.end());
  apply_repetition_penalty(work_, history, config_.repetition_penalty);
  kept.clear();
  if (config_.greedy()) {
    // HF's argmax: the first maximum.
    const size_t best = size_t(std::max_element(work_.begin(), work_.end()) - work_.begin());
    kept.emplace_back(1.0f, int32_t(best));
    return;
  }
  const double inv_t = 1.0 / double(config_.temperature);
  const float mx = *std::max_element(work_.begin(), work_.end());
  // Unnormalised probabilities e^((l - max) / T), in double for the normaliser.
  std::vector<std::pair<float, int32_t>>& cand = candidates_;
  cand.resize(work_.size());
  double total = 0;
  for (size_t i = 0; i < work_.size(); ++i) {
    const double p = std::exp((double(work_[i]) - mx) * inv_t);
    cand[i] = {float(p), int32_t(i)};
    total += p;
  }
  size_t n = cand.size();
  if (config_.top_k > 0 && size_t(config_.top_k) < n) {
    std::nth_element(cand.begin(), cand.begin() + (config_.top_k - 1), cand.end(), more_likely);
    const float kth = cand[size_t(config_.top_k - 1)].first;
    // HF keeps every token whose score is not below the k-th one (ties survive).
    auto end = std::partition(cand.begin(), cand.end(), [&](const auto& c) { return c.first >= kth; });
    n = size_t(end - cand.begin());
    total = 0;
    for (size_t i = 0; i < n; ++i) total += cand[i].first;
  }
  // Sort the most likely first (partially when top-p can stop early).
  size_t sorted = std::min(n, kPartial);
  std::partial_sort(cand.begin(), cand.begin() + sorted, cand.begin() + n, more_likely);
  if (config_.top_p < 1.0f) {
    // HF removes a token when the mass of the strictly more likely tokens is >= top_p.
    const double target = double(config_.top_p) * total;
    double above = 0;
    size_t keep = 0;
    for (;;) {
      while (keep < sorted && above < target) above += cand[keep++].first;
      if (above >= target || sorted == n) break;
      std::sort(cand.begin() + sorted, cand.begin() + n, more_likely);  // rare: a very flat distribution
      sorted = n;
    }
    n = std::max<size_t>(keep, 1);
  }
  if (config_.min_p > 0.0f) {
    const float threshold = config_.min_p * cand[0].first;  // cand[0] is the most likely token
    if (sorted < n) std::sort(cand.begin() + sorted, cand.begin() + n, more_likely);
    size_t keep = 0;
    while (keep < n && cand[keep].first >= threshold) ++keep;
    n = std::max<size_t>(keep, 1);
  }
  double mass = 0;
  for (size_t i = 0; i < n; ++i) mass += cand[i].first;
  kept.assign(cand.begin(), cand.begin() + n);
  for (auto& c : kept) c.first = float(c.first / mass);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  filter(logits, history, kept_);
  if (kept_.size() == 1) return kept_[0].second;
  const double u = uniform01(rng_);
  double acc = 0;
  for (const auto& [p, id] : kept_) {
    acc += p;
    if (u < acc) return id;
  }
  return kept_.back().second;  // u landed in the rounding slack of the last bucket
}

std::vector<float> Sampler::probabilities(std::span<const float> logits, std::span<const int32_t> history) const {
  std::vector<std::pair<float, int32_t>> kept;
  filter(logits, history, kept);
  std::vector<float> p(logits.size(), 0.0f);
  for (const auto& [prob, id] : kept) p[size_t(id)] = prob;
  return p;
}

}  // namespace aqlm
