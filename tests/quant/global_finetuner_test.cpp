// Global fine-tuning on a small random all-AQLM model: the KL gradient through the head, the
// final norm and every block against central differences; training lowers the held-out KL and
// keeps the best parameters; results independent of the thread count; the unhappy paths.
// (The end-to-end run on stories260K through aqlm-cli is tests/jobs/cli_finetune_test.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/model/model.h"
#include "core/quant/global_finetuner.h"

namespace aqlm {
namespace {

constexpr int64_t kSeqlen = 8, kVocab = 24, kHidden = 16;

std::vector<float> normal(size_t n, std::mt19937_64& rng, double mean, double stddev) {
  std::normal_distribution<double> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = float(d(rng));
  return v;
}

ModelConfig small_config() {
  ModelConfig c;
  c.arch = Architecture::Llama;
  c.hidden_size = int(kHidden);
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 8;
  c.vocab_size = int(kVocab);
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  return c;
}

// Every linear AQLM 2x4g4 (2 codebooks of 16 codewords of 4 weights), random values.
FinetuneModel random_model(uint64_t seed) {
  std::mt19937_64 rng(seed);
  FinetuneModel m;
  m.config = small_config();
  const BlockShape shape = BlockShape::from_config(m.config);
  m.blocks.resize(size_t(m.config.num_layers));
  for (FinetuneBlock& b : m.blocks) {
    b.shape = shape;
    for (int l = 0; l < kBlockLinearCount; ++l) {
      QuantizedLayer q;
      q.out_features = shape.out_features(BlockLinear(l));
      q.in_features = shape.in_features(BlockLinear(l));
      q.config = AqlmConfig{2, 4, 4};
      std::uniform_int_distribution<int> code(0, 15);
      q.codes.resize(size_t(q.out_features * q.num_groups() * 2));
      for (auto& c : q.codes) c = uint16_t(code(rng));
      q.codebooks = normal(size_t(2 * 16 * 4), rng, 0.0, 0.7);
      q.scales = normal(size_t(q.out_features), rng, 1.0 / std::sqrt(double(q.in_features)), 0.02);
      b.aqlm[size_t(l)] = std::move(q);
    }
    b.input_norm = normal(kHidden, rng, 1.0, 0.1);
    b.post_attention_norm = normal(kHidden, rng, 1.0, 0.1);
  }
  m.embedding = normal(size_t(kVocab * kHidden), rng, 0.0, 1.0);
  m.final_norm = normal(kHidden, rng, 1.0, 0.1);
  return m;
}

std::vector<int32_t> random_tokens(int64_t windows, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> id(0, int32_t(kVocab - 1));
  std::vector<int32_t> t(size_t(windows * kSeqlen));
  for (auto& x : t) x = id(rng);
  return t;
}

// Random teacher outputs (final normed states and head): a teacher the student cannot match.
TeacherOutputs random_teacher(int64_t windows, std::mt19937_64& rng) {
  TeacherOutputs t;
  t.windows = windows;
  t.seqlen = kSeqlen;
  t.hidden = kHidden;
  t.vocab = kVocab;
  t.normed = normal(size_t(windows * kSeqlen * kHidden), rng, 0.0, 1.0);
  t.head = normal(size_t(kVocab * kHidden), rng, 0.0, 1.0);
  return t;
}

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

struct KdCase {
  FinetuneModel model = random_model(1);
  std::mt19937_64 rng{2};
  std::vector<int32_t> tokens = random_tokens(3, rng);
  TeacherOutputs teacher = random_teacher(3, rng);
  std::vector<int64_t> ids{0, 1, 2};
};

// The analytic directional derivative of the mean KL along a random direction of one parameter
// vector, against central differences of the loss (float model, KL summed in double: with a
// step of 1e-2 of the parameters' size the truncation and rounding errors stay below 1%).
void expect_directional_derivative(KdCase& c, std::vector<float>& param, const std::vector<float>& grad,
                                   const char* what) {
  std::mt19937_64 rng(7);
  double rms = 0;
  for (float v : param) rms += double(v) * double(v);
  rms = std::sqrt(rms / double(param.size()));
  const std::vector<float> direction = normal(param.size(), rng, 0.0, rms);  // steps relative to the values
  double analytic = 0;
  for (size_t i = 0; i < param.size(); ++i) analytic += double(grad[i]) * double(direction[i]);
  GlobalKd kd(c.model, 2, kSeqlen, pool());
  const std::vector<float> saved = param;
  const double h = 1e-2;
  const auto loss_at = [&](double t) {
    for (size_t i = 0; i < param.size(); ++i) param[i] = saved[i] + float(t * direction[i]);
    kd.refresh();
    return kd.run(c.tokens, c.teacher, c.ids, false, nullptr, nullptr);
  };
  const double numeric = (loss_at(h) - loss_at(-h)) / (2 * h);
  param = saved;
  EXPECT_NEAR(analytic, numeric, 1e-2 * std::abs(numeric) + 1e-6) << what;
  EXPECT_GT(std::abs(numeric), 1e-3) << what << ": the check needs a loss that moves";
}

TEST(GlobalFinetune, KlGradientMatchesFiniteDifferences) {
  KdCase c;
  std::vector<BlockGradients<float>> grads(c.model.blocks.size());
  for (size_t b = 0; b < grads.size(); ++b) {
    std::array<bool, kBlockLinearCount> all{};
    all.fill(true);
    grads[b].allocate(c.model.blocks[b].shape, all);
  }
  std::vector<float> d_final_norm(kHidden, 0.0f);
  GlobalKd kd(c.model, 2, kSeqlen, pool());  // micro-batches of 2 and 1 windows
  const double kl = kd.run(c.tokens, c.teacher, c.ids, true, &grads, &d_final_norm);
  EXPECT_GT(kl, 0.05);

  const auto aqlm_grads = [&](size_t b, int l) {
    const QuantizedLayer& q = *c.model.blocks[b].aqlm[size_t(l)];
    std::vector<float> d_cb(q.codebooks.size(), 0.0f), d_sc(q.scales.size(), 0.0f);
    aqlm_backward(pool(), aqlm_view(q), grads[b].linear[size_t(l)].data(), d_cb.data(), d_sc.data());
    return std::pair{d_cb, d_sc};
  };
  const auto [cb_q0, sc_q0] = aqlm_grads(0, kQProj);
  const auto [cb_d1, sc_d1] = aqlm_grads(1, kDownProj);
  const auto [cb_v0, sc_v0] = aqlm_grads(0, kVProj);
  expect_directional_derivative(c, c.model.blocks[0].aqlm[kQProj]->codebooks, cb_q0, "block 0 q_proj codebooks");
  expect_directional_derivative(c, c.model.blocks[0].aqlm[kVProj]->scales, sc_v0, "block 0 v_proj scales");
  expect_directional_derivative(c, c.model.blocks[1].aqlm[kDownProj]->codebooks, cb_d1, "block 1 down_proj codebooks");
  expect_directional_derivative(c, c.model.blocks[1].aqlm[kDownProj]->scales, sc_d1, "block 1 down_proj scales");
  expect_directional_derivative(c, c.model.blocks[0].input_norm, grads[0].input_norm, "block 0 input norm");
  expect_directional_derivative(c, c.model.blocks[1].post_attention_norm, grads[1].post_attention_norm,
                                "block 1 post-attention norm");
  expect_directional_derivative(c, c.model.final_norm, d_final_norm, "final norm");
}

// A dense Model holding the student's weights (AQLM linears dequantized), for run_teacher.
Model dense_twin(const FinetuneModel& m) {
  Model model;
  model.config = m.config;
  const auto& names = block_linear_names();
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    const std::string prefix = layer_prefix(int(b));
    const BlockShape& shape = m.blocks[b].shape;
    for (int l = 0; l < kBlockLinearCount; ++l)
      model.weights.add_f32(prefix + names[size_t(l)] + ".weight",
                            {shape.out_features(BlockLinear(l)), shape.in_features(BlockLinear(l))},
                            m.blocks[b].aqlm[size_t(l)]->dequantize());
    model.weights.add_f32(prefix + "input_layernorm.weight", {kHidden}, m.blocks[b].input_norm);
    model.weights.add_f32(prefix + "post_attention_layernorm.weight", {kHidden}, m.blocks[b].post_attention_norm);
  }
  model.weights.add_f32("model.embed_tokens.weight", {kVocab, kHidden}, m.embedding);
  model.weights.add_f32("model.norm.weight", {kHidden}, m.final_norm);
  return model;
}

TEST(GlobalFinetune, TheSameModelAsTeacherGivesZeroKl) {
  KdCase c;
  const TeacherOutputs self = run_teacher(dense_twin(c.model), c.tokens, 3, kSeqlen, pool());
  EXPECT_EQ(self.head, c.model.embedding);  // tied: the head is the embedding
  GlobalKd kd(c.model, 2, kSeqlen, pool());
  EXPECT_LT(kd.run(c.tokens, self, c.ids, false, nullptr, nullptr), 1e-9);
  EXPECT_GT(kd.run(c.tokens, c.teacher, c.ids, false, nullptr, nullptr), 0.05);
  // The micro-batch size does not change the loss.
  GlobalKd one_by_one(c.model, 1, kSeqlen, pool());
  const double kl = kd.run(c.tokens, c.teacher, c.ids, false, nullptr, nullptr);
  EXPECT_NEAR(one_by_one.run(c.tokens, c.teacher, c.ids, false, nullptr, nullptr), kl, 1e-6 * kl);
}

GlobalFinetuneOptions options(ThreadPool* p) {
  GlobalFinetuneOptions o;
  o.adam.learning_rate = 1e-2;
  o.max_epochs = 8;
  o.batch_windows = 4;
  o.micro_batch_windows = 2;
  o.patience = 8;
  o.pool = p;
  return o;
}

TEST(GlobalFinetune, TrainingLowersTheHeldoutKlAndKeepsCodes) {
  FinetuneModel model = random_model(1);
  std::mt19937_64 rng(3);
  const auto train_tokens = random_tokens(16, rng);
  const auto heldout_tokens = random_tokens(4, rng);
  TeacherOutputs train = random_teacher(16, rng), heldout = random_teacher(4, rng);
  const std::vector<uint16_t> codes_before = model.blocks[1].aqlm[kUpProj]->codes;
  GlobalFinetuner tuner(options(&pool()));
  int steps_seen = 0;
  const GlobalFinetuneResult r =
      tuner.run(model, train_tokens, train, heldout_tokens, heldout, [&](const GlobalFinetuneProgress&) { ++steps_seen; });
  EXPECT_EQ(r.steps, 8 * 4);
  EXPECT_EQ(steps_seen, 32);
  EXPECT_GT(r.initial_heldout_kl, 0.1);
  EXPECT_LT(r.best_heldout_kl, 0.9 * r.initial_heldout_kl);
  EXPECT_GT(r.best_step, 0);
  EXPECT_EQ(model.blocks[1].aqlm[kUpProj]->codes, codes_before);
  // The model holds the best parameters: evaluating it again gives the best held-out KL.
  GlobalKd kd(model, 1, kSeqlen, pool());
  std::vector<int64_t> ids{0, 1, 2, 3};
  EXPECT_NEAR(kd.run(heldout_tokens, heldout, ids, false, nullptr, nullptr), r.best_heldout_kl, 1e-12);
}

TEST(GlobalFinetune, SameResultWhateverTheThreadCount) {
  std::mt19937_64 rng(3);
  const auto tokens = random_tokens(8, rng);
  const TeacherOutputs teacher = random_teacher(8, rng);
  const TeacherOutputs none{0, kSeqlen, kHidden, kVocab, {}, {}};
  ThreadPool one(1), three(3);
  FinetuneModel a = random_model(1), b = random_model(1);
  GlobalFinetuneOptions oa = options(&one), ob = options(&three);
  oa.max_epochs = ob.max_epochs = 2;
  GlobalFinetuner(oa).run(a, tokens, teacher, {}, none);
  GlobalFinetuner(ob).run(b, tokens, teacher, {}, none);
  for (size_t blk = 0; blk < a.blocks.size(); ++blk)
    for (int l = 0; l < kBlockLinearCount; ++l)
      EXPECT_EQ(a.blocks[blk].aqlm[size_t(l)]->codebooks, b.blocks[blk].aqlm[size_t(l)]->codebooks);
  EXPECT_EQ(a.final_norm, b.final_norm);
  EXPECT_NE(a.final_norm, random_model(1).final_norm);
}

TEST(GlobalFinetune, MemoryEstimateMatchesTheMeasuredSmolLM2Runs) {
  // Peak RSS of aqlm-cli finetune on SmolLM2-135M-Instruct 2x8g8 less the two loaded models
  // (0.63 GB), measured by /usr/bin/time on the H100 machine (docs/benchmarks.md): 72 windows of
  // 512 tokens one at a time 3.47 GB; 136 windows of 1024 tokens two at a time 7.28 GB.
  ModelConfig smol;
  smol.arch = Architecture::Llama;
  smol.hidden_size = 576;
  smol.intermediate_size = 1536;
  smol.num_layers = 30;
  smol.num_heads = 9;
  smol.num_kv_heads = 3;
  smol.head_dim = 64;
  smol.vocab_size = 49152;
  smol.tie_word_embeddings = true;
  EXPECT_NEAR(double(global_finetune_memory_bytes(smol, 72, 512, 1)) / 1e9, 3.47 - 0.63, 0.15 * 2.84);
  EXPECT_NEAR(double(global_finetune_memory_bytes(smol, 136, 1024, 2)) / 1e9, 7.28 - 0.63, 0.15 * 6.65);
}

TEST(GlobalFinetune, UnhappyPaths) {
  // A token outside the vocabulary names itself.
  KdCase c;
  c.tokens[5] = int32_t(kVocab);
  GlobalKd kd(c.model, 1, kSeqlen, pool());
  try {
    kd.run(c.tokens, c.teacher, c.ids, false, nullptr, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(std::string(e.what()).find("token id 24 is outside the vocabulary of 24") != std::string::npos) << e.what();
  }
  // Options out of range.
  GlobalFinetuneOptions o;
  o.max_epochs = 0;
  EXPECT_THROW(GlobalFinetuner{o}, Error);
  o = {};
  o.micro_batch_windows = o.batch_windows + 1;
  EXPECT_THROW(GlobalFinetuner{o}, Error);
  // A teacher of another shape, or one that is itself compressed.
  ModelConfig s = small_config(), t = small_config();
  EXPECT_NO_THROW(check_teacher_fits(t, s));
  t.vocab_size = 25;
  try {
    check_teacher_fits(t, s);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "the teacher does not fit the compressed model: vocabulary size 25 vs 24");
  }
  t = small_config();
  t.num_layers = 3;
  EXPECT_THROW(check_teacher_fits(t, s), Error);
  t = small_config();
  t.aqlm = AqlmQuantConfig{};
  try {
    check_teacher_fits(t, s);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the teacher is itself AQLM-compressed"), std::string::npos);
  }
  // No training windows.
  FinetuneModel m = random_model(1);
  const TeacherOutputs none{0, kSeqlen, kHidden, kVocab, {}, {}};
  EXPECT_THROW(GlobalFinetuner(options(&pool())).run(m, {}, none, {}, none), Error);
}

}  // namespace
}  // namespace aqlm
