#include "core/quant/quantized_layer.h"

#include <cstdio>
#include <regex>

#include "core/common/error.h"

namespace aqlm {

std::string AqlmConfig::name() const { return str(num_codebooks, "x", nbits, "g", group_size); }

AqlmConfig AqlmConfig::parse(const std::string& text) {
  static const std::regex pattern(R"(^\s*(\d+)x(\d+)g(\d+)\s*$)");
  std::smatch m;
  AQLM_CHECK(std::regex_match(text, m, pattern), "AQLM config '", text,
             "' is not of the form MxBgG (e.g. 1x16g8 or 2x8g8)");
  AqlmConfig c;
  c.num_codebooks = std::stoi(m[1]);
  c.nbits = std::stoi(m[2]);
  c.group_size = std::stoi(m[3]);
  AQLM_CHECK(c.num_codebooks >= 1 && c.num_codebooks <= 8, "AQLM config '", text, "': ", c.num_codebooks,
             " codebooks; 1 to 8 are supported");
  AQLM_CHECK(c.nbits >= 1 && c.nbits <= 16, "AQLM config '", text, "': ", c.nbits,
             " bits per codebook; 1 to 16 are supported");
  AQLM_CHECK(c.group_size >= 1 && c.group_size <= 64, "AQLM config '", text, "': group size ", c.group_size,
             " is out of range 1..64");
  return c;
}

static double aqlm_bits_total(int64_t out, int64_t in, const AqlmConfig& c) {
  const double codebook_bits = 16.0 * double(c.group_size) * c.num_codebooks * double(c.codebook_size());
  const double code_bits = double(out) * double(in / c.group_size) * c.nbits * c.num_codebooks;
  const double scale_bits = 16.0 * double(out);
  return codebook_bits + code_bits + scale_bits;
}

double aqlm_bits_per_parameter(int64_t out, int64_t in, const AqlmConfig& c) {
  AQLM_CHECK(out > 0 && in > 0, "bits per parameter of an empty matrix [", out, ", ", in, "]");
  return aqlm_bits_total(out, in, c) / (double(out) * double(in));
}

double aqlm_average_bits_per_parameter(const std::vector<std::pair<int64_t, int64_t>>& shapes,
                                       const AqlmConfig& c) {
  AQLM_CHECK(!shapes.empty(), "average bits per parameter of no matrices");
  double bits = 0, params = 0;
  for (const auto& [out, in] : shapes) {
    AQLM_CHECK(out > 0 && in > 0, "bits per parameter of an empty matrix [", out, ", ", in, "]");
    bits += aqlm_bits_total(out, in, c);
    params += double(out) * double(in);
  }
  return bits / params;
}

void QuantizedLayer::validate(const std::string& what) const {
  const int64_t g = config.group_size, M = config.num_codebooks, K = config.codebook_size();
  AQLM_CHECK(out_features > 0 && in_features > 0, what, ": empty shape [", out_features, ", ", in_features, "]");
  AQLM_CHECK(in_features % g == 0, what, ": ", in_features, " input features are not a multiple of the group size ",
             g);
  AQLM_CHECK(int64_t(codes.size()) == out_features * (in_features / g) * M, what, ": ", codes.size(),
             " codes, expected ", out_features * (in_features / g) * M);
  AQLM_CHECK(int64_t(codebooks.size()) == M * K * g, what, ": ", codebooks.size(), " codebook values, expected ",
             M * K * g);
  AQLM_CHECK(int64_t(scales.size()) == out_features, what, ": ", scales.size(), " scales, expected ", out_features);
  for (size_t i = 0; i < codes.size(); ++i)
    AQLM_CHECK(codes[i] < K, what, ": code ", codes[i], " at position ", i, " is not below 2^", config.nbits);
}

std::vector<float> QuantizedLayer::dequantize() const {
  validate("quantized layer");
  const int64_t g = config.group_size, M = config.num_codebooks, K = config.codebook_size();
  const int64_t J = num_groups();
  std::vector<float> weight(static_cast<size_t>(out_features * in_features));
  for (int64_t o = 0; o < out_features; ++o) {
    for (int64_t j = 0; j < J; ++j) {
      float* dst = &weight[size_t(o * in_features + j * g)];
      const uint16_t* code = &codes[size_t((o * J + j) * M)];
      for (int64_t c = 0; c < g; ++c) {
        float sum = 0;  // codebooks summed in order m = 0..M-1, then scaled: the order the runtime uses too
        for (int64_t m = 0; m < M; ++m) sum += codebooks[size_t((m * K + code[m]) * g + c)];
        dst[c] = scales[size_t(o)] * sum;
      }
    }
  }
  return weight;
}

}  // namespace aqlm
