#include "core/runtime/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "tests/runtime/runtime_test_models.h"

namespace aqlm {
namespace {

std::vector<float> random_input(int64_t n, int64_t in, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(size_t(n * in));
  for (auto& v : x) v = d(rng);
  return x;
}

// Double-precision y = W x + b with W given as fp32 rows.
std::vector<double> reference(const std::vector<float>& w, const std::vector<float>& bias, const std::vector<float>& x,
                              int64_t n, int64_t in, int64_t out) {
  std::vector<double> y(size_t(n * out));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias.empty() ? 0.0 : bias[size_t(o)];
      for (int64_t k = 0; k < in; ++k) s += double(w[size_t(o * in + k)]) * x[size_t(t * in + k)];
      y[size_t(t * out + o)] = s;
    }
  return y;
}

TEST(Linear, DenseWithBiasMatchesDouble) {
  const auto model = test::load_test_weights(test::tiny_model_dir("tiny_qwen2"));  // BF16 weights, q/k/v biases
  const std::string p = "model.layers.1.self_attn.k_proj";
  const auto lin = load_linear(model->weights, model->config, p, 64, 32);
  EXPECT_EQ(lin->describe(), "dense BF16");
  EXPECT_EQ(lin->weight_bytes(), 32u * 64u * 2u);
  const auto w = model->weights.to_f32(p + ".weight");
  const auto b = model->weights.to_f32(p + ".bias");
  ThreadPool pool(2);
  for (int64_t n : {1, 3, 13}) {
    const auto x = random_input(n, 64, uint64_t(n));
    std::vector<float> y(size_t(n * 32));
    run_linear(*lin, x.data(), n, 64, y.data(), 32, pool);
    const auto ref = reference(w, b, x, n, 64, 32);
    // fp32 dot products of 64 terms of magnitude <~ 0.5: 1e-5 absolute is ~50 ulp.
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-5) << "n " << n << " i " << i;
  }
}

TEST(Linear, AqlmEveryPathMatchesTheDoubleReferenceKernel) {
  for (const char* name : {"tiny_aqlm_2x8", "tiny_aqlm_1x10"}) {
    const auto model = test::load_test_weights(test::tiny_model_dir(name));
    const auto& q = *model->config.aqlm;
    const std::string p = "model.layers.0.mlp.down_proj";
    const int64_t in = model->config.intermediate_size, out = model->config.hidden_size;
    const auto lin = load_linear(model->weights, model->config, p, in, out);
    EXPECT_EQ(lin->describe(), str("AQLM ", q.num_codebooks, "x", q.nbits_per_codebook, "g", q.in_group_size));
    AqlmView view;
    view.codes = model->weights.get(p + ".codes").data;
    view.code_bytes = q.nbits_per_codebook <= 8 ? 1 : 2;
    view.codebooks = model->weights.get(p + ".codebooks").as<uint16_t>();
    view.scales = model->weights.get(p + ".scales").as<uint16_t>();
    view.out = out;
    view.in = in;
    view.num_codebooks = q.num_codebooks;
    view.nbits = q.nbits_per_codebook;
    view.group_size = q.in_group_size;
    ThreadPool pool(2);
    // 1 and 5 tokens: the AQLM kernels (5 pads the lookup tables to 8); 13: dequantize + GEMM.
    for (int64_t n : {1, 5, 13}) {
      const auto x = random_input(n, in, uint64_t(n) + 7);
      std::vector<float> y(size_t(n * out)), ref(size_t(n * out));
      run_linear(*lin, x.data(), n, in, y.data(), out, pool);
      cpu::aqlm_gemv_reference(view, x.data(), n, in, ref.data(), out, 0, out);
      double scale = 0;
      for (float v : ref) scale = std::max(scale, double(std::fabs(v)));
      // fp32 sums over <= 96 inputs: 1e-5 of the largest output. The LutAvx512 kernel (B <= 8,
      // <= 8 tokens) rounds its lookup tables to int16: each read is off by <= 1/65534 of its
      // block's largest entry (aqlm_table_quantization), ~5e-5 of the largest output here.
      const bool int16_tables = n <= cpu::kAqlmLutTokens && q.nbits_per_codebook <= 8 &&
                                cpu::aqlm_kernel_supported(cpu::AqlmKernel::LutAvx512);
      const double tol = (int16_tables ? 5e-4 : 1e-5) * scale;
      for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], tol) << name << " n " << n << " i " << i;
    }
  }
}

TEST(Linear, AqlmCodesWithoutAQuantizationConfigAreRefused) {
  auto model = test::load_test_weights(test::tiny_model_dir("tiny_aqlm_2x8"));
  model->config.aqlm.reset();
  try {
    load_linear(model->weights, model->config, "model.layers.0.mlp.up_proj", 64, 96);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "tensor model.layers.0.mlp.up_proj.codes: the model has AQLM codes but its config has no AQLM "
                 "quantization_config");
  }
}

TEST(Linear, AqlmCodesOfTheWrongShapeAreNamed) {
  auto model = test::load_test_weights(test::tiny_model_dir("tiny_aqlm_2x8"));
  try {
    // up_proj is [96, 64]: asking for 128 inputs gives 16 groups where the file has 8.
    load_linear(model->weights, model->config, "model.layers.0.mlp.up_proj", 128, 96);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tensor model.layers.0.mlp.up_proj.codes has shape [96, 8, 2] but the model needs [96, 16, 2]");
  }
}

}  // namespace
}  // namespace aqlm
