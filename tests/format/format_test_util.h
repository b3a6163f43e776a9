#pragma once
// Tiny random models and AQLM layers for the format tests, and the checks they share.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/format/aqlm_reader.h"
#include "core/model/model.h"
#include "core/quant/quantized_layer.h"
#include "core/runtime/engine.h"
#include "tests/support/test_paths.h"

namespace aqlm::test {

// A Llama (or Qwen2, with q/k/v biases) of 2 layers, hidden 64, FFN 96, 4 heads / 2 KV heads,
// float32 weights drawn like a trained model's (activations stay O(1)); no tokenizer.
inline std::unique_ptr<Model> tiny_model(uint32_t seed, bool qwen2 = false, bool tied = true) {
  auto m = std::make_unique<Model>();
  ModelConfig& c = m->config;
  c.arch = qwen2 ? Architecture::Qwen2 : Architecture::Llama;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 61;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = tied;
  c.attention_bias = qwen2;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  std::mt19937 rng(seed);
  auto normal = [&](std::vector<int64_t> shape, double sd) {
    std::normal_distribution<float> d(0.0f, float(sd));
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = d(rng);
    return v;
  };
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double sd, double mean = 0) {
    auto v = normal(shape, sd);
    for (float& x : v) x += float(mean);
    m->weights.add_f32(name, std::move(shape), v);
  };
  add("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, 1.0);
  add("model.norm.weight", {c.hidden_size}, 0.2, 1.0);
  if (!tied) add("lm_head.weight", {c.vocab_size, c.hidden_size}, 1.0 / 8);
  for (const auto& p : projection_prefixes(c)) {
    const auto [out, in] = projection_shape(c, p);
    add(p + ".weight", {out, in}, 1.0 / std::sqrt(double(in)));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    add(layer_prefix(l) + "input_layernorm.weight", {c.hidden_size}, 0.2, 1.0);
    add(layer_prefix(l) + "post_attention_layernorm.weight", {c.hidden_size}, 0.2, 1.0);
    if (qwen2)
      for (const char* b : {"q_proj", "k_proj", "v_proj"})
        add(layer_prefix(l) + "self_attn." + b + ".bias", {b[0] == 'q' ? c.q_dim() : c.kv_dim()}, 0.5);
  }
  c.validate();
  return m;
}

// Random codes over the whole range [0, 2^B), N(0, 1) codebooks and scales of size
// 1 / sqrt(in * M): the dequantized weight is about as large as a trained layer's.
inline QuantizedLayer random_layer(int64_t out, int64_t in, const AqlmConfig& config, uint32_t seed) {
  std::mt19937 rng(seed);
  QuantizedLayer q;
  q.out_features = out;
  q.in_features = in;
  q.config = config;
  std::uniform_int_distribution<int> code(0, int(config.codebook_size() - 1));
  q.codes.resize(size_t(out * (in / config.group_size) * config.num_codebooks));
  for (auto& c : q.codes) c = uint16_t(code(rng));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  q.codebooks.resize(size_t(config.num_codebooks * config.codebook_size() * config.group_size));
  for (float& v : q.codebooks) v = normal(rng);
  std::uniform_real_distribution<float> scale(0.5f, 1.5f);
  q.scales.resize(size_t(out));
  for (float& s : q.scales) s = scale(rng) / std::sqrt(float(in * config.num_codebooks));
  return q;
}

// Every projection of `model` quantized with `config`, except those in `dense`.
inline std::map<std::string, QuantizedLayer> random_layers(const ModelConfig& c, const AqlmConfig& config, uint32_t seed,
                                                           const std::vector<std::string>& dense = {}) {
  std::map<std::string, QuantizedLayer> layers;
  uint32_t s = seed;
  for (const auto& p : projection_prefixes(c)) {
    if (std::find(dense.begin(), dense.end(), p) != dense.end()) continue;
    const auto [out, in] = projection_shape(c, p);
    layers.emplace(p, random_layer(out, in, config, s++));
  }
  return layers;
}

inline float round_f16(float x) { return f16_to_f32(f32_to_f16(x)); }

inline std::vector<float> logits_of(const Model& model, const std::vector<int32_t>& ids) {
  auto engine = create_engine(model);
  std::vector<float> logits(ids.size() * size_t(model.config.vocab_size));
  engine->forward(ids, logits.data(), true);
  return logits;
}

// max |a - b| / max |b|
inline double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, double(std::fabs(a[i] - b[i])));
    scale = std::max(scale, double(std::fabs(b[i])));
  }
  return diff / scale;
}

inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << fragments.front() << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    for (const auto& f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
  }
}

inline std::vector<std::string> entries_of(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline LoadOptions without_tokenizer() {
  LoadOptions o;
  o.load_tokenizer = false;
  return o;
}

}  // namespace aqlm::test
