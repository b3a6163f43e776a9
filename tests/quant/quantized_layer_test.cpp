#include "core/quant/quantized_layer.h"

#include <gtest/gtest.h>

#include "core/common/error.h"

namespace aqlm {
namespace {

TEST(AqlmConfig, ParsesAndNames) {
  const AqlmConfig c = AqlmConfig::parse("2x8g8");
  EXPECT_EQ(c.num_codebooks, 2);
  EXPECT_EQ(c.nbits, 8);
  EXPECT_EQ(c.group_size, 8);
  EXPECT_EQ(c.codebook_size(), 256);
  EXPECT_EQ(c.name(), "2x8g8");
  EXPECT_EQ(AqlmConfig::parse("1x16g16").name(), "1x16g16");
}

TEST(AqlmConfig, RejectsMalformedText) {
  for (const char* bad : {"2x8", "x8g8", "2x8g", "2 x 8 g 8", "abc", "", "0x8g8", "9x8g8", "1x17g8", "1x0g8", "1x16g0"}) {
    try {
      AqlmConfig::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}

// Hand-computed from REFERENCE.md section 1: (16*g*M*2^B + out*(in/g)*B*M + 16*out) / (out*in).
TEST(AqlmBits, MatchesTheFormulaOnLlama2Shapes) {
  // 4096x4096 1x16g8: (8,388,608 + 33,554,432 + 65,536) / 16,777,216 = 2.50390625 exactly.
  EXPECT_DOUBLE_EQ(aqlm_bits_per_parameter(4096, 4096, AqlmConfig::parse("1x16g8")), 42008576.0 / 16777216.0);
  EXPECT_DOUBLE_EQ(aqlm_bits_per_parameter(4096, 4096, AqlmConfig::parse("1x16g8")), 2.50390625);
  // 2x8g8: (65,536 + 33,554,432 + 65,536) / 16,777,216 = 2.0078125.
  EXPECT_DOUBLE_EQ(aqlm_bits_per_parameter(4096, 4096, AqlmConfig::parse("2x8g8")), 2.0078125);
  // 11008x4096 1x16g8: (8,388,608 + 11008*512*16 + 16*11008) / (11008*4096).
  EXPECT_DOUBLE_EQ(aqlm_bits_per_parameter(11008, 4096, AqlmConfig::parse("1x16g8")), 98742272.0 / 45088768.0);
  // Over one Llama-2-7B block (q,k,v,o 4096x4096; gate, up 11008x4096; down 4096x11008) the
  // averages are REFERENCE.md's 2.29 (1x16g8), 2.00 (2x8g8) and 1.58 (1x16g16):
  const std::vector<std::pair<int64_t, int64_t>> block = {{4096, 4096},  {4096, 4096},  {4096, 4096}, {4096, 4096},
                                                           {11008, 4096}, {11008, 4096}, {4096, 11008}};
  EXPECT_DOUBLE_EQ(aqlm_average_bits_per_parameter(block, AqlmConfig::parse("1x16g8")), 464150528.0 / 202375168.0);
  EXPECT_NEAR(aqlm_average_bits_per_parameter(block, AqlmConfig::parse("1x16g8")), 2.29, 0.005);
  EXPECT_DOUBLE_EQ(aqlm_average_bits_per_parameter(block, AqlmConfig::parse("2x8g8")), 405889024.0 / 202375168.0);
  EXPECT_NEAR(aqlm_average_bits_per_parameter(block, AqlmConfig::parse("1x16g16")), 1.58, 0.005);
  // A small layer: the codebooks dominate. 64x128 2x8g8: (65,536 + 64*16*16 + 1,024) / 8,192 = 10.125.
  EXPECT_DOUBLE_EQ(aqlm_bits_per_parameter(64, 128, AqlmConfig::parse("2x8g8")), 10.125);
  EXPECT_THROW(aqlm_bits_per_parameter(0, 128, AqlmConfig::parse("2x8g8")), Error);
  EXPECT_THROW(aqlm_average_bits_per_parameter({}, AqlmConfig::parse("2x8g8")), Error);
}

QuantizedLayer tiny_layer() {
  // out 2, in 4, 2x2g2: two codebooks of 4 two-vectors.
  QuantizedLayer q;
  q.out_features = 2;
  q.in_features = 4;
  q.config = AqlmConfig{2, 2, 2};
  q.codebooks = {// codebook 0
                 1, 2, 3, 4, 5, 6, 7, 8,
                 // codebook 1
                 0.5f, -0.5f, 0.25f, 0.75f, -1, 1, 2, -2};
  q.codes = {// row 0: group 0 (cb0 word 1, cb1 word 2), group 1 (cb0 0, cb1 3)
             1, 2, 0, 3,
             // row 1: group 0 (3, 0), group 1 (2, 1)
             3, 0, 2, 1};
  q.scales = {2.0f, -0.5f};
  return q;
}

TEST(QuantizedLayer, DequantizesByTheFormula) {
  const std::vector<float> w = tiny_layer().dequantize();
  // row 0: 2 * ([3,4] + [-1,1]) = [4, 10];  2 * ([1,2] + [2,-2]) = [6, 0]
  // row 1: -0.5 * ([7,8] + [0.5,-0.5]) = [-3.75, -3.75];  -0.5 * ([5,6] + [0.25,0.75]) = [-2.625, -3.375]
  const std::vector<float> expected = {4, 10, 6, 0, -3.75f, -3.75f, -2.625f, -3.375f};
  EXPECT_EQ(w, expected);
  EXPECT_DOUBLE_EQ(tiny_layer().bits_per_parameter(), (16.0 * 2 * 2 * 4 + 2 * 2 * 2 * 2 + 16 * 2) / 8.0);
}

TEST(QuantizedLayer, ValidateNamesTheProblem) {
  QuantizedLayer q = tiny_layer();
  q.codes[5] = 4;  // 2^B = 4
  EXPECT_THROW(
      {
        try {
          q.validate("layer.x");
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "layer.x: code 4 at position 5 is not below 2^2");
          throw;
        }
      },
      Error);
  q = tiny_layer();
  q.scales.pop_back();
  EXPECT_THROW(q.validate("layer.x"), Error);
  q = tiny_layer();
  q.codebooks.resize(3);
  EXPECT_THROW(q.dequantize(), Error);
  q = tiny_layer();
  q.in_features = 5;
  EXPECT_THROW(q.validate("layer.x"), Error);
}

}  // namespace
}  // namespace aqlm
