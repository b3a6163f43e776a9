// The training-mode decoder block: forward and backward against the independent numpy float64
// block (scripts/reference/block_reference.py -> tests/fixtures/quant/block_<variant>.json),
// every gradient against finite differences in double, thread-count independence, and the
// unhappy paths.
#include <gtest/gtest.h>

#include <random>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/block_trainable.h"
#include "tests/quant/block_test_util.h"

namespace aqlm {
namespace {

using nlohmann::json;
using test::numeric_gradient;
using test::relative_error;

constexpr double kGradientTolerance = 1e-6;  // see block_ops_test.cpp

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

template <typename T>
struct Case {
  BlockShape shape;
  BlockWeights<T> w;
  std::vector<T> x, cotangent;
  int64_t batch = 0, seqlen = 0;
  json fx;
};

template <typename T>
Case<T> load_case(const std::string& variant) {
  Case<T> c;
  c.fx = test::load_fixture("block_" + variant + ".json");
  const json& s = c.fx["shape"];
  c.shape.hidden = s["hidden"];
  c.shape.num_heads = s["heads"];
  c.shape.num_kv_heads = s["kv_heads"];
  c.shape.head_dim = s["head_dim"];
  c.shape.intermediate = s["intermediate"];
  c.shape.rms_norm_eps = s["rms_norm_eps"];
  c.shape.attention_bias = s["attention_bias"];
  c.shape.sliding_window = s["sliding_window"];
  c.shape.rope_inv_freq = c.fx["rope_inv_freq"].template get<std::vector<double>>();
  c.batch = s["batch"];
  c.seqlen = s["seqlen"];
  const auto& names = block_linear_names();
  for (int l = 0; l < kBlockLinearCount; ++l) c.w.linear[size_t(l)] = c.fx["weights"][names[size_t(l)]].template get<std::vector<T>>();
  if (c.shape.attention_bias)
    for (int i = 0; i < 3; ++i) c.w.bias[size_t(i)] = c.fx["bias"][size_t(i)].template get<std::vector<T>>();
  c.w.input_norm = c.fx["input_norm"].template get<std::vector<T>>();
  c.w.post_attention_norm = c.fx["post_attention_norm"].template get<std::vector<T>>();
  c.x = c.fx["x"].template get<std::vector<T>>();
  c.cotangent = c.fx["cotangent"].template get<std::vector<T>>();
  return c;
}

template <typename T>
double block_loss(TrainableBlock<T>& block, const Case<T>& c, const std::vector<T>& x) {
  std::vector<T> y(x.size());
  block.forward(c.w, x.data(), c.batch, c.seqlen, y.data());
  double loss = 0;
  for (size_t i = 0; i < y.size(); ++i) loss += double(y[i]) * double(c.cotangent[i]);
  return loss;
}

constexpr std::array<bool, kBlockLinearCount> kAllLinears{true, true, true, true, true, true, true};

class BlockVariant : public ::testing::TestWithParam<std::string> {};

TEST_P(BlockVariant, ForwardMatchesNumpyReference) {
  const auto expect = test::load_fixture("block_" + GetParam() + ".json")["y"].get<std::vector<double>>();
  {
    auto c = load_case<double>(GetParam());
    TrainableBlock<double> block(c.shape, &pool());
    std::vector<double> y(c.x.size());
    block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
    EXPECT_LT(test::max_relative_error(y, expect), 1e-12) << "double forward";  // only summation order differs
  }
  auto c = load_case<float>(GetParam());
  TrainableBlock<float> block(c.shape, &pool());
  std::vector<float> y(c.x.size());
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  // float32 storage of inputs and weights alone costs ~1e-7 relative per value; a few layers
  // of GEMMs of length <= 32 keep the output within ~1e-6. The brief's bar is 1e-5.
  EXPECT_LT(test::max_relative_error(y, expect), 1e-5) << "float forward";
}

TEST_P(BlockVariant, BackwardMatchesNumpyReference) {
  const json fx = test::load_fixture("block_" + GetParam() + ".json");
  const json& g = fx["grad"];
  const auto check = [&](auto& c, double tolerance, const char* what) {
    using T = typename std::decay_t<decltype(c.x)>::value_type;
    TrainableBlock<T> block(c.shape, &pool());
    std::vector<T> y(c.x.size()), dx(c.x.size());
    BlockGradients<T> grads;
    grads.allocate(c.shape, kAllLinears);
    block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
    block.backward(c.w, c.cotangent.data(), grads, dx.data());
    const auto& names = block_linear_names();
    EXPECT_LT(relative_error(dx, g["x"].get<std::vector<double>>()), tolerance) << what << " dx";
    EXPECT_LT(relative_error(grads.input_norm, g["input_norm"].get<std::vector<double>>()), tolerance) << what;
    EXPECT_LT(relative_error(grads.post_attention_norm, g["post_attention_norm"].get<std::vector<double>>()),
              tolerance) << what;
    for (int l = 0; l < kBlockLinearCount; ++l)
      EXPECT_LT(relative_error(grads.linear[size_t(l)], g["weights"][names[size_t(l)]].get<std::vector<double>>()),
                tolerance) << what << " " << names[size_t(l)];
    if (c.shape.attention_bias)
      for (int i = 0; i < 3; ++i)
        EXPECT_LT(relative_error(grads.bias[size_t(i)], g["bias"][size_t(i)].get<std::vector<double>>()), tolerance)
            << what << " bias " << i;
  };
  auto cd = load_case<double>(GetParam());
  check(cd, 1e-11, "double");  // same math, different summation order
  auto cf = load_case<float>(GetParam());
  // float gradients: sums of a few hundred float products, ~1e-6 relative; a wrong term is O(1).
  check(cf, 2e-5, "float");
}

TEST_P(BlockVariant, GradientsMatchFiniteDifferences) {
  auto c = load_case<double>(GetParam());
  TrainableBlock<double> block(c.shape, &pool());
  std::vector<double> y(c.x.size()), dx(c.x.size());
  BlockGradients<double> grads;
  grads.allocate(c.shape, kAllLinears);
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  block.backward(c.w, c.cotangent.data(), grads, dx.data());
  const auto loss = [&] { return block_loss(block, c, c.x); };
  EXPECT_LT(relative_error(dx, numeric_gradient(c.x, loss)), kGradientTolerance) << "input";
  EXPECT_LT(relative_error(grads.input_norm, numeric_gradient(c.w.input_norm, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(grads.post_attention_norm, numeric_gradient(c.w.post_attention_norm, loss)),
            kGradientTolerance);
  for (int l = 0; l < kBlockLinearCount; ++l)
    EXPECT_LT(relative_error(grads.linear[size_t(l)], numeric_gradient(c.w.linear[size_t(l)], loss)),
              kGradientTolerance) << block_linear_names()[size_t(l)];
  if (c.shape.attention_bias)
    for (int i = 0; i < 3; ++i)
      EXPECT_LT(relative_error(grads.bias[size_t(i)], numeric_gradient(c.w.bias[size_t(i)], loss)), kGradientTolerance)
          << "bias " << i;
}

INSTANTIATE_TEST_SUITE_P(Families, BlockVariant, ::testing::Values("llama", "qwen2", "llama3", "mistral", "aqlm"));

// The AQLM chain the fine-tuner runs: block backward gives dW, aqlm_backward turns it into
// gradients w.r.t. codebooks and scales of all seven linears.
TEST(TrainableBlock, AqlmCodebookAndScaleGradientsMatchFiniteDifferencesAndNumpy) {
  auto c = load_case<double>("aqlm");
  const json& a = c.fx["aqlm"];
  const auto& names = block_linear_names();
  std::array<std::vector<uint16_t>, kBlockLinearCount> codes;
  std::array<std::vector<double>, kBlockLinearCount> books, scales;
  std::array<AqlmTensors<double>, kBlockLinearCount> views;
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const json& layer = a["layers"][names[size_t(l)]];
    codes[size_t(l)] = layer["codes"].get<std::vector<uint16_t>>();
    books[size_t(l)] = layer["codebooks"].get<std::vector<double>>();
    scales[size_t(l)] = layer["scales"].get<std::vector<double>>();
    auto& v = views[size_t(l)];
    v.out_features = c.shape.out_features(BlockLinear(l));
    v.in_features = c.shape.in_features(BlockLinear(l));
    v.num_codebooks = a["num_codebooks"];
    v.nbits = a["nbits"];
    v.group_size = a["group_size"];
    v.codes = codes[size_t(l)].data();
    v.codebooks = books[size_t(l)].data();
    v.scales = scales[size_t(l)].data();
  }
  TrainableBlock<double> block(c.shape, &pool());
  const auto loss = [&] {
    for (int l = 0; l < kBlockLinearCount; ++l) aqlm_dequantize(pool(), views[size_t(l)], c.w.linear[size_t(l)].data());
    return block_loss(block, c, c.x);
  };
  loss();
  // The fixture's dense weights are the dequantized ones.
  for (int l = 0; l < kBlockLinearCount; ++l)
    EXPECT_LT(test::max_relative_error(c.w.linear[size_t(l)], c.fx["weights"][names[size_t(l)]].get<std::vector<double>>()),
              1e-14);
  BlockGradients<double> grads;
  grads.allocate(c.shape, kAllLinears);
  std::vector<double> y(c.x.size());
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  block.backward(c.w, c.cotangent.data(), grads, nullptr);
  for (int l = 0; l < kBlockLinearCount; ++l) {
    std::vector<double> d_books(books[size_t(l)].size(), 0.0), d_scales(scales[size_t(l)].size(), 0.0);
    aqlm_backward(pool(), views[size_t(l)], grads.linear[size_t(l)].data(), d_books.data(), d_scales.data());
    const std::string& name = names[size_t(l)];
    EXPECT_LT(relative_error(d_books, numeric_gradient(books[size_t(l)], loss)), kGradientTolerance) << name;
    EXPECT_LT(relative_error(d_scales, numeric_gradient(scales[size_t(l)], loss)), kGradientTolerance) << name;
    EXPECT_LT(relative_error(d_books, c.fx["grad"]["codebooks"][name].get<std::vector<double>>()), 1e-11) << name;
    EXPECT_LT(relative_error(d_scales, c.fx["grad"]["scales"][name].get<std::vector<double>>()), 1e-11) << name;
  }
}

TEST(TrainableBlock, ShapeFromModelConfigComputesLlama3Frequencies) {
  const json fx = test::load_fixture("block_llama3.json");
  ModelConfig config;
  config.hidden_size = 16;
  config.intermediate_size = 24;
  config.num_layers = 1;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  config.vocab_size = 10;
  config.rope_theta = fx["shape"]["rope_theta"];
  config.rope_scaling.type = "llama3";
  config.rope_scaling.factor = 8.0;
  config.rope_scaling.low_freq_factor = 1.0;
  config.rope_scaling.high_freq_factor = 4.0;
  config.rope_scaling.original_max_position_embeddings = 8192;
  const BlockShape s = BlockShape::from_config(config);
  EXPECT_EQ(s.q_dim(), 32);
  EXPECT_EQ(s.out_features(kOProj), 16);
  EXPECT_EQ(s.in_features(kOProj), 32);
  EXPECT_LT(test::max_relative_error(s.rope_inv_freq, fx["rope_inv_freq"].get<std::vector<double>>()), 1e-15);
  // Linear scaling divides every frequency by the factor.
  RopeScaling linear;
  linear.type = "linear";
  linear.factor = 4.0;
  const auto plain = rope_inverse_frequencies(8, 10000.0, RopeScaling{});
  const auto scaled = rope_inverse_frequencies(8, 10000.0, linear);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_DOUBLE_EQ(scaled[i], plain[i] / 4.0);
  EXPECT_DOUBLE_EQ(plain[1], 0.1);  // 10000^(-2/8)
}

// A block bigger than every internal chunk (140 tokens, 96 FFN rows, 70-token windows).
Case<float> random_case(int64_t seqlen, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Case<float> c;
  c.shape.hidden = 48;
  c.shape.num_heads = 6;
  c.shape.num_kv_heads = 2;
  c.shape.head_dim = 8;
  c.shape.intermediate = 96;
  c.shape.attention_bias = true;
  c.shape.sliding_window = 40;
  c.shape.rope_inv_freq = rope_inverse_frequencies(8, 10000.0, RopeScaling{});
  c.batch = 2;
  c.seqlen = seqlen;
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const auto bl = BlockLinear(l);
    c.w.linear[size_t(l)] = test::cast_vector<float>(test::random_vector(
        size_t(c.shape.out_features(bl) * c.shape.in_features(bl)), rng, 1.0 / std::sqrt(double(c.shape.in_features(bl)))));
  }
  for (int i = 0; i < 3; ++i)
    c.w.bias[size_t(i)] = test::cast_vector<float>(test::random_vector(size_t(c.shape.out_features(BlockLinear(i))), rng, 0.1));
  c.w.input_norm.assign(48, 1.0f);
  c.w.post_attention_norm.assign(48, 0.9f);
  c.x = test::cast_vector<float>(test::random_vector(size_t(2 * seqlen * 48), rng));
  c.cotangent = test::cast_vector<float>(test::random_vector(c.x.size(), rng));
  return c;
}

TEST(TrainableBlock, ResultsDoNotDependOnTheThreadCount) {
  const auto c = random_case(70, 9);
  const auto run = [&](ThreadPool& p, std::vector<float>& y, std::vector<float>& dx, BlockGradients<float>& g) {
    TrainableBlock<float> block(c.shape, &p);
    y.resize(c.x.size());
    dx.resize(c.x.size());
    g.allocate(c.shape, kAllLinears);
    block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
    block.backward(c.w, c.cotangent.data(), g, dx.data());
  };
  ThreadPool one(1), three(3);
  std::vector<float> y1, y3, dx1, dx3;
  BlockGradients<float> g1, g3;
  run(one, y1, dx1, g1);
  run(three, y3, dx3, g3);
  EXPECT_EQ(y1, y3);
  EXPECT_EQ(dx1, dx3);
  for (int l = 0; l < kBlockLinearCount; ++l) EXPECT_EQ(g1.linear[size_t(l)], g3.linear[size_t(l)]);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g1.bias[size_t(i)], g3.bias[size_t(i)]);
  EXPECT_EQ(g1.input_norm, g3.input_norm);
  EXPECT_EQ(g1.post_attention_norm, g3.post_attention_norm);
}

TEST(TrainableBlock, FrozenLinearsPassGradientsWithoutComputingTheirOwn) {
  const auto c = random_case(20, 10);
  TrainableBlock<float> block(c.shape, &pool());
  std::vector<float> y(c.x.size()), dx_all(c.x.size()), dx_frozen(c.x.size());
  BlockGradients<float> all, frozen;
  all.allocate(c.shape, kAllLinears);
  frozen.allocate(c.shape, {false, true, false, true, false, true, false});
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  block.backward(c.w, c.cotangent.data(), all, dx_all.data());
  block.backward(c.w, c.cotangent.data(), frozen, dx_frozen.data());  // backward twice from one forward is fine
  EXPECT_EQ(dx_all, dx_frozen);
  for (int l = 0; l < kBlockLinearCount; ++l) {
    if (frozen.linear[size_t(l)].empty()) continue;
    EXPECT_EQ(frozen.linear[size_t(l)], all.linear[size_t(l)]);
  }
  EXPECT_TRUE(frozen.linear[kQProj].empty());
  EXPECT_EQ(frozen.input_norm, all.input_norm);
}

TEST(TrainableBlock, GradientsOfABatchAreTheSumsOverItsWindows) {
  // Micro-batching relies on this: windows are independent and gradients add up.
  auto c = load_case<double>("qwen2");
  TrainableBlock<double> block(c.shape, &pool());
  const int64_t per_window = c.seqlen * c.shape.hidden;
  BlockGradients<double> whole, parts;
  whole.allocate(c.shape, kAllLinears);
  parts.allocate(c.shape, kAllLinears);
  std::vector<double> y(c.x.size()), dx_whole(c.x.size()), dx_parts(c.x.size());
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  block.backward(c.w, c.cotangent.data(), whole, dx_whole.data());
  for (int64_t b = 0; b < c.batch; ++b) {
    block.forward(c.w, c.x.data() + b * per_window, 1, c.seqlen, y.data());
    block.backward(c.w, c.cotangent.data() + b * per_window, parts, dx_parts.data() + b * per_window);
  }
  EXPECT_LT(test::max_relative_error(dx_parts, dx_whole), 1e-13);
  for (int l = 0; l < kBlockLinearCount; ++l)
    EXPECT_LT(test::max_relative_error(parts.linear[size_t(l)], whole.linear[size_t(l)]), 1e-13);
  for (int i = 0; i < 3; ++i) EXPECT_LT(test::max_relative_error(parts.bias[size_t(i)], whole.bias[size_t(i)]), 1e-13);
  EXPECT_LT(test::max_relative_error(parts.input_norm, whole.input_norm), 1e-13);
}

TEST(TrainableBlock, ExposesEachLinearsInputForCalibration) {
  // y = x + attn Wo^T + act Wd^T, and n1 = rmsnorm(x) * w_in: recomputed here from the
  // exposed inputs with plain loops.
  auto c = load_case<double>("llama");
  TrainableBlock<double> block(c.shape, &pool());
  std::vector<double> y(c.x.size());
  block.forward(c.w, c.x.data(), c.batch, c.seqlen, y.data());
  ASSERT_EQ(block.tokens(), c.batch * c.seqlen);
  const int64_t H = c.shape.hidden, Q = c.shape.q_dim(), F = c.shape.intermediate;
  const double* attn = block.linear_input(kOProj);
  const double* act = block.linear_input(kDownProj);
  const double* n1 = block.linear_input(kKProj);
  EXPECT_EQ(n1, block.linear_input(kQProj));
  EXPECT_EQ(block.linear_input(kGateProj), block.linear_input(kUpProj));
  double worst = 0;
  for (int64_t t = 0; t < block.tokens(); ++t) {
    double ms = 0;
    for (int64_t i = 0; i < H; ++i) ms += c.x[size_t(t * H + i)] * c.x[size_t(t * H + i)] / double(H);
    for (int64_t o = 0; o < H; ++o) {
      double v = c.x[size_t(t * H + o)];
      for (int64_t i = 0; i < Q; ++i) v += attn[t * Q + i] * c.w.linear[kOProj][size_t(o * Q + i)];
      for (int64_t i = 0; i < F; ++i) v += act[t * F + i] * c.w.linear[kDownProj][size_t(o * F + i)];
      worst = std::max(worst, std::abs(v - y[size_t(t * H + o)]));
      worst = std::max(worst, std::abs(n1[t * H + o] - c.x[size_t(t * H + o)] / std::sqrt(ms + 1e-5) * c.w.input_norm[size_t(o)]));
    }
  }
  EXPECT_LT(worst, 1e-12);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainableBlock, RejectsInconsistentShapesAndWeights) {
  auto c = load_case<float>("qwen2");
  BlockShape bad = c.shape;
  bad.num_kv_heads = 3;
  EXPECT_EQ(error_of([&] { TrainableBlock<float> b(bad); }), "block: 4 attention heads do not split into groups of 3 KV heads");
  bad = c.shape;
  bad.head_dim = 5;
  EXPECT_EQ(error_of([&] { TrainableBlock<float> b(bad); }), "block: head_dim 5 must be positive and even");
  bad = c.shape;
  bad.rope_inv_freq.pop_back();
  EXPECT_EQ(error_of([&] { TrainableBlock<float> b(bad); }),
            "block: 1 RoPE inverse frequencies given, expected head_dim / 2 = 2");

  TrainableBlock<float> block(c.shape, &pool());
  std::vector<float> y(c.x.size());
  BlockGradients<float> g;
  g.allocate(c.shape, kAllLinears);
  EXPECT_EQ(error_of([&] { block.backward(c.w, c.cotangent.data(), g, nullptr); }),
            "block: backward() called before forward()");
  EXPECT_EQ(error_of([&] { block.linear_input(kUpProj); }), "block: linear_input() called before forward()");
  auto w = c.w;
  w.linear[kKProj].pop_back();
  EXPECT_EQ(error_of([&] { block.forward(w, c.x.data(), c.batch, c.seqlen, y.data()); }),
            "block: self_attn.k_proj weight has 127 values, expected 8 x 16");
  w = c.w;
  w.bias[1].clear();
  EXPECT_EQ(error_of([&] { block.forward(w, c.x.data(), c.batch, c.seqlen, y.data()); }),
            "block: self_attn.k_proj bias has 0 values, expected 8");
  w = c.w;
  w.post_attention_norm.resize(15);
  EXPECT_EQ(error_of([&] { block.forward(w, c.x.data(), c.batch, c.seqlen, y.data()); }),
            "block: post_attention_layernorm weight has 15 values, expected 16");
  EXPECT_EQ(error_of([&] { block.forward(c.w, c.x.data(), 0, c.seqlen, y.data()); }),
            "block: a micro-batch of 0 windows of 5 tokens is empty");

  auto llama = load_case<float>("llama");  // no attention biases
  llama.w.bias[0].assign(16, 0.0f);
  TrainableBlock<float> plain(llama.shape, &pool());
  EXPECT_EQ(error_of([&] { plain.forward(llama.w, llama.x.data(), 1, 5, y.data()); }),
            "block: self_attn.q_proj bias has 16 values, expected 0 (the block has no attention biases)");

  RopeScaling yarn;
  yarn.type = "yarn";
  EXPECT_EQ(error_of([&] { rope_inverse_frequencies(8, 10000.0, yarn); }),
            "RoPE: rope_scaling type 'yarn' is not supported (supported: linear, llama3)");
}

}  // namespace
}  // namespace aqlm
