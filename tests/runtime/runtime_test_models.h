#pragma once
// Models and reference fixtures for the runtime and eval tests (header-only: both rooms'
// test executables include it).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/model/model.h"
#include "tests/support/test_paths.h"

namespace aqlm::test {

// A Model (weights and config only) through load_model: a Hugging Face folder (plain or
// AQLM), a .gguf file or a llama2.c .bin.
inline std::unique_ptr<Model> load_test_weights(const std::filesystem::path& path) {
  LoadOptions options;
  options.load_tokenizer = false;
  return load_model(path.string(), options);
}

inline std::filesystem::path tiny_model_dir(const std::string& name) {
  return source_path("tests/fixtures/runtime/" + name);
}

// tests/fixtures/runtime/<name>/reference.json, written by scripts/reference/forward_reference.py tiny.
struct TinyReference {
  std::vector<int32_t> ids;
  std::vector<std::vector<double>> logits;  // [ids, vocab], float64 numpy forward
  std::vector<double> inv_freq;             // RoPE inverse frequencies after scaling
  double mean_nll = 0;                      // over ids[1:] given the prefix
};

inline TinyReference read_tiny_reference(const std::string& name) {
  const auto j = nlohmann::json::parse(read_text_file(tiny_model_dir(name) / "reference.json"));
  TinyReference r;
  r.ids = j.at("ids").get<std::vector<int32_t>>();
  r.logits = j.at("logits").get<std::vector<std::vector<double>>>();
  r.inv_freq = j.at("inv_freq").get<std::vector<double>>();
  r.mean_nll = j.at("mean_nll").get<double>();
  return r;
}

// max |got - ref| / max |ref|: the relative error measure of these tests.
inline double max_relative_error(const float* got, const std::vector<double>& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::fabs(double(got[i]) - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return diff / scale;
}

// The stories260K golden values of shared/README.md.
inline const std::vector<int32_t>& stories_golden_first_ids() {
  static const std::vector<int32_t> ids = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                           426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295};
  return ids;
}

}  // namespace aqlm::test
