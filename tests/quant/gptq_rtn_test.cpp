// RTN and GPTQ against the independent numpy references of
// scripts/reference/aqlm_reference_gptq_rtn.py (fixture tests/fixtures/quant/gptq_rtn.safetensors:
// a 24x64 layer with 3 outlier input channels, a dead input channel 5 and an all-zero group
// in row 3).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/common/error.h"
#include "core/model/safetensors.h"
#include "core/quant/gptq.h"
#include "core/quant/layer_problem.h"
#include "core/quant/rtn.h"
#include "core/quant/synthetic_layer.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {

std::string fixture() { return test::source_path("tests/fixtures/quant/gptq_rtn.safetensors").string(); }

std::vector<double> expected(const std::string& name) {
  const SafetensorsFile file(fixture());
  const SafetensorsTensor* t = file.find(name);
  EXPECT_NE(t, nullptr) << name;
  std::vector<double> v(size_t(t->view.numel()));
  convert_float_dtype(t->view.dtype, t->view.data, DType::F64, v.data(), v.size());
  return v;
}

TEST(Rtn, EqualsTheNumpyReferenceExactly) {
  const LayerProblem p = load_layer_problem(fixture());
  for (int bits : {2, 3, 4})
    for (int64_t gs : {0, 16}) {
      RtnOptions o;
      o.bits = bits;
      o.group_size = gs;
      const DenseQuantResult r = quantize_rtn(p, o);
      const std::vector<double> ref = expected(str("rtn_b", bits, "_g", gs));
      ASSERT_EQ(r.weight.size(), ref.size());
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(double(r.weight[i]), ref[i]) << "bits " << bits << " group " << gs << " at " << i;
    }
}

// Both sides compute in float64; the C++ side uses lazy batch updates, row tiles, Eigen's
// Cholesky and FMA contractions, the reference one column at a time with numpy's inverse.
// Those differ by rounding (~1e-15 relative); 1e-5 absolute (weights are ~0.1) would still
// catch any single different rounding decision, which moves a weight by a full grid step.
TEST(Gptq, EqualsTheFloat64NumpyReference) {
  const LayerProblem p = load_layer_problem(fixture());
  for (int bits : {2, 3, 4})
    for (int64_t gs : {0, 16, 24})
      for (bool act : {false, true}) {
        GptqOptions o;
        o.bits = bits;
        o.group_size = gs;
        o.act_order = act;
        o.block_size = 32;  // several lazy blocks on 64 columns
        const DenseQuantResult r = quantize_gptq(p, o);
        const std::vector<double> ref = expected(str("gptq_b", bits, "_g", gs, "_act", int(act)));
        double worst = 0;
        for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(double(r.weight[i]) - ref[i]));
        EXPECT_LT(worst, 1e-5) << "bits " << bits << " group " << gs << " act-order " << act;
        // The dead input channel 5 is zero in every row.
        for (int64_t row = 0; row < p.out_features; ++row) EXPECT_EQ(r.weight[size_t(row * 64 + 5)], 0.0f);
      }
}

TEST(Gptq, BeatsRtnInOutputError) {
  SyntheticLayerOptions so;
  so.out_features = 64;
  so.in_features = 128;
  so.seed = 3;
  const LayerProblem p = make_synthetic_layer(so);
  for (int bits : {2, 3, 4}) {
    const double rtn = p.relative_error(quantize_rtn(p, {bits, 32}).weight);
    GptqOptions o;
    o.bits = bits;
    o.group_size = 32;
    o.act_order = true;
    const double gptq = p.relative_error(quantize_gptq(p, o).weight);
    std::printf("%d bits, groups of 32: RTN %.5f, GPTQ (act-order) %.5f\n", bits, rtn, gptq);
    EXPECT_LT(gptq, 0.8 * rtn) << bits << " bits: GPTQ " << gptq << " vs RTN " << rtn;
  }
}

// bits + (16-bit scale + b-bit zero) per group (+ a 32-bit group index per column with act-order groups).
TEST(UniformBits, CountScalesZerosAndGroupIndex) {
  EXPECT_DOUBLE_EQ(uniform_bits_per_parameter(4096, 4096, 2, 128, false), 2 + 18.0 / 128);
  EXPECT_DOUBLE_EQ(uniform_bits_per_parameter(4096, 4096, 3, 0, false), 3 + 19.0 / 4096);
  EXPECT_DOUBLE_EQ(uniform_bits_per_parameter(4096, 4096, 2, 128, true), 2 + 18.0 / 128 + 32.0 / 4096);
  // 172 inputs in groups of 128: two groups per row (the last one short).
  EXPECT_DOUBLE_EQ(uniform_bits_per_parameter(64, 172, 4, 128, false), (64.0 * 172 * 4 + 64 * 2 * 20) / (64.0 * 172));
  const LayerProblem p = load_layer_problem(fixture());
  EXPECT_DOUBLE_EQ(quantize_rtn(p, {3, 16}).bits_per_parameter, 3 + 19.0 / 16);
  GptqOptions o;
  o.bits = 2;
  o.group_size = 16;
  o.act_order = true;
  EXPECT_DOUBLE_EQ(quantize_gptq(p, o).bits_per_parameter, 2 + 18.0 / 16 + 32.0 / 24);
}

TEST(Gptq, RejectsBadOptionsAndInputs) {
  LayerProblem p = load_layer_problem(fixture());
  p.name = "blk.0.q";
  GptqOptions o;
  o.bits = 1;
  EXPECT_THROW(quantize_gptq(p, o), Error);
  o.bits = 9;
  EXPECT_THROW(quantize_gptq(p, o), Error);
  o.bits = 4;
  o.group_size = -1;
  EXPECT_THROW(quantize_gptq(p, o), Error);
  o.group_size = 16;
  o.damp = -0.1;
  EXPECT_THROW(quantize_gptq(p, o), Error);
  EXPECT_THROW(quantize_rtn(p, {1, 16}), Error);
  EXPECT_THROW(quantize_rtn(p, {4, -2}), Error);
  // Not positive definite even after dampening: a negative eigenvalue larger than the damping.
  o.damp = 0;
  LayerProblem bad = p;
  for (int64_t i = 0; i < 64; ++i) bad.xtx[size_t(i * 64 + i)] = i == 7 ? -5.0 : bad.xtx[size_t(i * 64 + i)];
  try {
    quantize_gptq(bad, o);
    ADD_FAILURE() << "accepted an indefinite XTX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.q: XTX"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not positive definite"), std::string::npos) << e.what();
  }
  bad = p;
  bad.weight[100] = NAN;
  try {
    quantize_rtn(bad, {4, 16});
    ADD_FAILURE() << "accepted NaN";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "blk.0.q: weight[1, 36] is nan; the weight must be finite");
  }
}

}  // namespace
}  // namespace aqlm
