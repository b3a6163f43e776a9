#pragma once
// Next-token choice from logits, with the filters of Hugging Face `generate` applied in its
// order: repetition penalty, temperature, top-k, top-p, min-p, then a seeded draw.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace aqlm {

struct SamplerConfig {
  float temperature = 1.0f;         // 0 = greedy (argmax)
  int top_k = 0;                    // keep the k most likely (ties with the k-th kept); 0 = off
  float top_p = 1.0f;               // keep the smallest most-likely set with mass >= top_p; 1 = off
  float min_p = 0.0f;               // drop tokens below min_p * the top probability; 0 = off
  float repetition_penalty = 1.0f;  // HF: a seen token's logit l becomes l / p if l > 0, else l * p; 1 = off
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f || top_k == 1; }
  // Throws Error naming the option when a value is out of range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplerConfig& config);
  const SamplerConfig& config() const { return config_; }

  // The next token. `history` holds the ids the repetition penalty applies to (prompt and
  // generated so far). Deterministic for a given seed and sequence of calls.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The distribution sample() draws from (zeros where filtered out; a one-hot for greedy).
  std::vector<float> probabilities(std::span<const float> logits, std::span<const int32_t> history) const;

  void reseed(uint64_t seed);

 private:
  // Fills work_ with the penalised logits and returns the kept candidates, most likely first,
  // with their normalised probabilities.
  void filter(std::span<const float> logits, std::span<const int32_t> history,
              std::vector<std::pair<float, int32_t>>& kept) const;

  SamplerConfig config_;
  std::mt19937_64 rng_;
  // Buffers reused between calls (a 150k vocabulary would otherwise allocate per token).
  mutable std::vector<float> work_;
  mutable std::vector<std::pair<float, int32_t>> candidates_, kept_;
};

// Applies the repetition penalty in place to every id present in `history` (each once).
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> history, float penalty);

}  // namespace aqlm
