#pragma once
// The AQLM representation of one linear layer, shared by the quantizer, the runtime and the
// HF-AQLM writer (REFERENCE.md sections 1 and 5):
//
//   W[o, j*g + c] = scales[o] * sum_m codebooks[m][ codes[o, j, m] ][c]
//
// Codes are kept as uint16 in memory (the file stores int8/int16 two's complement); codebooks
// and scales as float32 (the file stores float16).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace aqlm {

// MxBgG: M codebooks of 2^B codewords, each a vector of g consecutive input weights.
struct AqlmConfig {
  int num_codebooks = 1;  // M, 1..8
  int nbits = 16;         // B, 1..16 (the quantizer supports 4..16)
  int group_size = 8;     // g (the quantizer supports 4, 8, 16)

  int64_t codebook_size() const { return int64_t(1) << nbits; }
  std::string name() const;  // "1x16g8"
  // Parses "MxBgG" (e.g. "2x8g8"); Error naming the text when malformed or out of range.
  static AqlmConfig parse(const std::string& text);
  bool operator==(const AqlmConfig&) const = default;
};

// Bits per parameter of one [out, in] matrix, REFERENCE.md section 1:
//   (16*g*M*2^B + out*(in/g)*B*M + 16*out) / (out*in)
// (fp16 codebooks, B-bit codes, one fp16 scale per output row).
double aqlm_bits_per_parameter(int64_t out_features, int64_t in_features, const AqlmConfig& config);
// The same averaged over several matrices, weighted by their parameter counts (how papers
// quote a model's bits: total bits of the quantized linears / their total parameters).
double aqlm_average_bits_per_parameter(const std::vector<std::pair<int64_t, int64_t>>& shapes,
                                       const AqlmConfig& config);

struct QuantizedLayer {
  int64_t out_features = 0, in_features = 0;
  AqlmConfig config;
  std::vector<uint16_t> codes;    // [out, in/g, M], codebook index fastest
  std::vector<float> codebooks;   // [M, 2^B, g]
  std::vector<float> scales;      // [out]

  int64_t num_groups() const { return in_features / config.group_size; }  // in/g
  // Checks every size against the shapes and every code against 2^B; Error naming `what`.
  void validate(const std::string& what) const;
  // The dense weight [out, in], row-major, float32.
  std::vector<float> dequantize() const;
  double bits_per_parameter() const { return aqlm_bits_per_parameter(out_features, in_features, config); }
};

}  // namespace aqlm
