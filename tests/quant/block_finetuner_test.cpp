// BlockFinetuner on a small all-AQLM block whose fp "teacher" is exactly representable: the
// student is the teacher with noisy codebooks, scales and norms, so fine-tuning must recover
// most of the gap. Also early stopping, determinism, micro-batching and the unhappy paths.
#include <gtest/gtest.h>

#include <random>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/block_finetuner.h"
#include "tests/quant/block_test_util.h"

namespace aqlm {
namespace {

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

constexpr int64_t kSeqlen = 16, kHidden = 32;

BlockShape small_shape() {
  BlockShape s;
  s.hidden = kHidden;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 8;
  s.intermediate = 64;
  s.rope_inv_freq = rope_inverse_frequencies(8, 10000.0, RopeScaling{});
  return s;
}

std::vector<float> normal(size_t n, std::mt19937_64& rng, double mean, double stddev) {
  std::normal_distribution<double> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = float(d(rng));
  return v;
}

// A block with every linear AQLM 2x6g4 (2 codebooks of 64 codewords of 4 weights).
FinetuneBlock teacher_block(uint64_t seed) {
  std::mt19937_64 rng(seed);
  FinetuneBlock b;
  b.shape = small_shape();
  for (int l = 0; l < kBlockLinearCount; ++l) {
    QuantizedLayer q;
    q.out_features = b.shape.out_features(BlockLinear(l));
    q.in_features = b.shape.in_features(BlockLinear(l));
    q.config = AqlmConfig{2, 6, 4};
    std::uniform_int_distribution<int> code(0, 63);
    q.codes.resize(size_t(q.out_features * q.num_groups() * 2));
    for (auto& c : q.codes) c = uint16_t(code(rng));
    q.codebooks = normal(size_t(2 * 64 * 4), rng, 0.0, 0.7);
    q.scales = normal(size_t(q.out_features), rng, 1.0 / std::sqrt(double(q.in_features)), 0.02);
    b.aqlm[size_t(l)] = std::move(q);
  }
  b.input_norm = normal(kHidden, rng, 1.0, 0.1);
  b.post_attention_norm = normal(kHidden, rng, 1.0, 0.1);
  return b;
}

// The teacher with its trainable parameters disturbed: codebooks by 30% of their spread,
// scales and norms by 10%.
FinetuneBlock perturbed(const FinetuneBlock& teacher, uint64_t seed) {
  std::mt19937_64 rng(seed);
  FinetuneBlock s = teacher;
  for (auto& q : s.aqlm) {
    for (float& v : q->codebooks) v += float(std::normal_distribution<double>(0.0, 0.7 * 0.3)(rng));
    for (float& v : q->scales) v *= float(1.0 + std::normal_distribution<double>(0.0, 0.1)(rng));
  }
  for (float& v : s.input_norm) v *= float(1.0 + std::normal_distribution<double>(0.0, 0.1)(rng));
  for (float& v : s.post_attention_norm) v *= float(1.0 + std::normal_distribution<double>(0.0, 0.1)(rng));
  return s;
}

// Windows of random inputs and the teacher's outputs, [count, seqlen, hidden].
struct WindowData {
  std::vector<float> inputs, targets;
  int64_t count = 0;
  BlockWindows view() const { return BlockWindows::in_memory(inputs.data(), targets.data(), count, kSeqlen, kHidden); }
};

WindowData teacher_windows(const FinetuneBlock& teacher, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  WindowData d;
  d.count = count;
  d.inputs = normal(size_t(count * kSeqlen * kHidden), rng, 0.0, 1.0);
  d.targets.resize(d.inputs.size());
  BlockWeights<float> w;
  for (int l = 0; l < kBlockLinearCount; ++l) {
    const QuantizedLayer& q = *teacher.aqlm[size_t(l)];
    w.linear[size_t(l)] = q.dequantize();
  }
  w.input_norm = teacher.input_norm;
  w.post_attention_norm = teacher.post_attention_norm;
  TrainableBlock<float> block(teacher.shape, &pool());
  block.forward(w, d.inputs.data(), count, kSeqlen, d.targets.data());
  return d;
}

struct TuningCase {
  FinetuneBlock teacher, student;
  WindowData train, heldout;
};

TuningCase make_case() {
  TuningCase s;
  s.teacher = teacher_block(1);
  s.student = perturbed(s.teacher, 2);
  s.train = teacher_windows(s.teacher, 32, 3);
  s.heldout = teacher_windows(s.teacher, 8, 4);
  return s;
}

BlockFinetuneOptions base_options() {
  BlockFinetuneOptions o;
  o.adam.learning_rate = 1e-2;
  o.max_epochs = 30;
  o.batch_windows = 8;
  o.micro_batch_windows = 4;
  o.patience = 3;
  o.pool = &pool();
  return o;
}

std::vector<float> all_parameters(const FinetuneBlock& b) {
  std::vector<float> v;
  for (const auto& q : b.aqlm) {
    v.insert(v.end(), q->codebooks.begin(), q->codebooks.end());
    v.insert(v.end(), q->scales.begin(), q->scales.end());
  }
  v.insert(v.end(), b.input_norm.begin(), b.input_norm.end());
  v.insert(v.end(), b.post_attention_norm.begin(), b.post_attention_norm.end());
  return v;
}

TEST(BlockFinetuner, RecoversMostOfThePerturbation) {
  TuningCase s = make_case();
  std::vector<BlockFinetuneProgress> history;
  const BlockFinetuneResult r =
      BlockFinetuner(base_options()).run(s.student, s.train.view(), s.heldout.view(), [&](const auto& p) {
        history.push_back(p);
      });
  // Measured: held-out relative MSE 0.137 -> 0.0011 (120x) in 30 epochs of 4 steps. A 50x
  // bar leaves margin for float noise; a wrong gradient term stalls far above it (lr 1e-3,
  // a 10x slower descent, only reaches 3.5x here).
  EXPECT_GT(r.initial_heldout.relative_mse, 0.1);
  EXPECT_LT(r.best_heldout.relative_mse, r.initial_heldout.relative_mse / 50);
  // Sanity: the teacher itself reproduces its targets (up to float summation order).
  EXPECT_LT(evaluate_block_mse(s.teacher, s.heldout.view(), 4, &pool()).relative_mse, 1e-12);
  // The loss is the MSE divided by the targets' mean square: the two reported numbers agree.
  double target_ms = 0;
  for (float v : s.heldout.targets) target_ms += double(v) * v / double(s.heldout.targets.size());
  EXPECT_NEAR(r.best_heldout.relative_mse, r.best_heldout.mse / target_ms, 1e-12 * r.best_heldout.relative_mse);
  // Every step was reported, the held-out windows evaluated at the end of each epoch.
  ASSERT_EQ(int64_t(history.size()), r.steps);
  EXPECT_EQ(history.front().steps_per_epoch, 4);
  for (const auto& p : history) EXPECT_EQ(p.heldout.has_value(), p.step % 4 == 0) << "step " << p.step;
  EXPECT_LT(history.back().train.relative_mse, history.front().train.relative_mse / 20);
  EXPECT_FALSE(r.stopped_early);
  EXPECT_EQ(r.epochs_run, 30);
  // The block holds the best parameters: evaluating it gives the best held-out loss exactly.
  const BlockMse now = evaluate_block_mse(s.student, s.heldout.view(), 4, &pool());
  EXPECT_EQ(now.mse, r.best_heldout.mse);
  EXPECT_EQ(now.relative_mse, r.best_heldout.relative_mse);
}

TEST(BlockFinetuner, EarlyStoppingRestoresTheBestParameters) {
  TuningCase s = make_case();
  BlockFinetuneOptions o = base_options();
  o.adam.learning_rate = 3e-2;  // too high: the held-out loss bottoms out, then climbs
  o.max_epochs = 100;
  o.patience = 3;
  std::vector<double> heldout;
  std::vector<float> last_parameters;
  const BlockFinetuneResult r = BlockFinetuner(o).run(s.student, s.train.view(), s.heldout.view(), [&](const auto& p) {
    if (p.heldout) heldout.push_back(p.heldout->relative_mse);
    last_parameters = all_parameters(s.student);  // the block is updated in place
  });
  ASSERT_TRUE(r.stopped_early);
  EXPECT_LT(r.epochs_run, 100);
  // Stopped exactly `patience` evaluations after the best one.
  const auto best = std::min_element(heldout.begin(), heldout.end());
  EXPECT_EQ(*best, r.best_heldout.relative_mse);
  EXPECT_EQ(heldout.end() - best, 1 + 3);
  EXPECT_EQ(r.best_step, (best - heldout.begin() + 1) * 4);
  EXPECT_GT(heldout.back(), r.best_heldout.relative_mse * 1.2);  // the restore matters
  EXPECT_NE(all_parameters(s.student), last_parameters);
  const BlockMse now = evaluate_block_mse(s.student, s.heldout.view(), 4, &pool());
  EXPECT_EQ(now.relative_mse, r.best_heldout.relative_mse);
}

TEST(BlockFinetuner, KeepsTheInitialParametersWhenNothingBeatsThem) {
  // The student is the teacher: the held-out loss starts at 0 (up to float noise) and no step
  // can improve on it, so the run stops after `patience` evaluations and restores the start.
  TuningCase s = make_case();
  s.student = s.teacher;
  BlockFinetuneOptions o = base_options();
  o.heldout_every_steps = 1;
  o.patience = 2;
  const BlockFinetuneResult r = BlockFinetuner(o).run(s.student, s.train.view(), s.heldout.view());
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.best_step, 0);
  EXPECT_EQ(r.steps, 2);
  EXPECT_EQ(all_parameters(s.student), all_parameters(s.teacher));
}

TEST(BlockFinetuner, DeterministicForASeedWhateverTheThreadCount) {
  const auto run = [](uint64_t seed, ThreadPool& p) {
    TuningCase s = make_case();
    BlockFinetuneOptions o = base_options();
    o.max_epochs = 3;
    o.seed = seed;
    o.pool = &p;
    std::vector<double> losses;
    BlockFinetuner(o).run(s.student, s.train.view(), s.heldout.view(),
                          [&](const auto& q) { losses.push_back(q.train.relative_mse); });
    return std::make_pair(losses, all_parameters(s.student));
  };
  ThreadPool one(1), three(3);
  const auto a = run(5, one), b = run(5, three), c = run(6, one);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.second, b.second);
  EXPECT_NE(a.first, c.first);  // another seed visits the windows in another order
}

TEST(BlockFinetuner, MicroBatchesAccumulateToTheSameSteps) {
  // Batches of 8 windows as one micro-batch of 8 or as micro-batches of 3, 3 and 2: the
  // gradients differ only by float summation order. (Uneven micro-batches would expose a
  // per-micro-batch normalisation, which Adam's scale invariance would otherwise hide.)
  const auto run = [](int64_t micro) {
    TuningCase s = make_case();
    BlockFinetuneOptions o = base_options();
    o.max_epochs = 1;
    o.micro_batch_windows = micro;
    std::vector<double> losses;
    BlockFinetuner(o).run(s.student, s.train.view(), BlockWindows{},
                          [&](const auto& p) { losses.push_back(p.train.relative_mse); });
    return std::make_pair(losses, all_parameters(s.student));
  };
  const auto whole = run(8), micro = run(3);
  ASSERT_EQ(whole.first.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(micro.first[i], whole.first[i], 1e-6 * whole.first[i]);
  // Compare the parameter updates of the 4 steps (each about lr = 1e-2 per step).
  const auto start = all_parameters(make_case().student);
  std::vector<double> d_whole(start.size()), d_micro(start.size());
  for (size_t i = 0; i < start.size(); ++i) {
    d_whole[i] = double(whole.second[i]) - start[i];
    d_micro[i] = double(micro.second[i]) - start[i];
  }
  EXPECT_LT(test::relative_error(d_micro, d_whole), 1e-3);
}

TEST(BlockFinetuner, WithoutHeldoutWindowsRunsEveryEpochAndKeepsTheLastParameters) {
  TuningCase s = make_case();
  BlockFinetuneOptions o = base_options();
  o.max_epochs = 2;
  o.batch_windows = 5;  // 32 windows: 7 steps per epoch, the last one of 2 windows
  o.micro_batch_windows = 2;
  std::vector<float> last;
  int64_t reports = 0;
  const BlockFinetuneResult r = BlockFinetuner(o).run(s.student, s.train.view(), BlockWindows{}, [&](const auto& p) {
    EXPECT_FALSE(p.heldout.has_value());
    EXPECT_EQ(p.steps_per_epoch, 7);
    last = all_parameters(s.student);
    ++reports;
  });
  EXPECT_EQ(r.steps, 14);
  EXPECT_EQ(reports, 14);
  EXPECT_EQ(r.epochs_run, 2);
  EXPECT_EQ(all_parameters(s.student), last);
}

TEST(BlockFinetuner, DenseLinearsStayFrozenAndOnlyTheChosenParametersMove) {
  TuningCase s = make_case();
  // q_proj and down_proj become dense (frozen), the others stay AQLM.
  for (int l : {int(kQProj), int(kDownProj)}) {
    s.student.dense[size_t(l)] = s.student.aqlm[size_t(l)]->dequantize();
    s.student.aqlm[size_t(l)].reset();
  }
  const FinetuneBlock before = s.student;
  BlockFinetuneOptions o = base_options();
  o.max_epochs = 2;
  o.train_scales = false;
  o.train_norms = false;
  BlockFinetuner(o).run(s.student, s.train.view(), BlockWindows{});
  EXPECT_EQ(s.student.dense[kQProj], before.dense[kQProj]);
  EXPECT_EQ(s.student.dense[kDownProj], before.dense[kDownProj]);
  EXPECT_EQ(s.student.input_norm, before.input_norm);
  for (int l : {int(kKProj), int(kVProj), int(kOProj), int(kGateProj), int(kUpProj)}) {
    EXPECT_EQ(s.student.aqlm[size_t(l)]->scales, before.aqlm[size_t(l)]->scales);
    EXPECT_EQ(s.student.aqlm[size_t(l)]->codes, before.aqlm[size_t(l)]->codes);
    EXPECT_NE(s.student.aqlm[size_t(l)]->codebooks, before.aqlm[size_t(l)]->codebooks);
  }
}

TEST(BlockFinetuner, CancelStopsAfterTheCurrentStepWithTheBestParameters) {
  TuningCase s = make_case();
  std::atomic<bool> cancel{false};
  BlockFinetuneOptions o = base_options();
  o.heldout_every_steps = 1;
  o.cancel = &cancel;
  const BlockFinetuneResult r = BlockFinetuner(o).run(s.student, s.train.view(), s.heldout.view(), [&](const auto& p) {
    if (p.step == 3) cancel = true;
  });
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(evaluate_block_mse(s.student, s.heldout.view(), 4, &pool()).relative_mse, r.best_heldout.relative_mse);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BlockFinetuner, RejectsBadOptions) {
  BlockFinetuneOptions o = base_options();
  o.micro_batch_windows = 16;
  EXPECT_EQ(error_of([&] { BlockFinetuner{o}; }),
            "block fine-tuning: micro-batch of 16 windows must be between 1 and the batch (8 windows)");
  o = base_options();
  o.patience = 0;
  EXPECT_EQ(error_of([&] { BlockFinetuner{o}; }), "block fine-tuning: patience 0 must be at least 1");
  o = base_options();
  o.max_epochs = 0;
  EXPECT_EQ(error_of([&] { BlockFinetuner{o}; }), "block fine-tuning: max_epochs 0 must be at least 1");
  o = base_options();
  o.adam.learning_rate = -1;
  EXPECT_EQ(error_of([&] { BlockFinetuner{o}; }), "Adam: learning rate -1 must be positive");
}

TEST(BlockFinetuner, RejectsBadBlocksAndWindows) {
  TuningCase s = make_case();
  const auto run = [&](FinetuneBlock& b, const BlockWindows& train, const BlockWindows& heldout) {
    return error_of([&] { BlockFinetuner(base_options()).run(b, train, heldout); });
  };
  FinetuneBlock b = s.student;
  b.aqlm[kVProj]->codes[5] = 64;
  EXPECT_EQ(run(b, s.train.view(), s.heldout.view()),
            "block fine-tuning: self_attn.v_proj: code 64 at position 5 is not below 2^6");
  b = s.student;
  b.dense[kUpProj].assign(64 * 32, 0.0f);
  EXPECT_EQ(run(b, s.train.view(), s.heldout.view()),
            "block fine-tuning: mlp.up_proj is given both as AQLM and as a dense weight");
  b = s.student;
  b.aqlm[kOProj].reset();
  EXPECT_EQ(run(b, s.train.view(), s.heldout.view()),
            "block fine-tuning: self_attn.o_proj dense weight has 0 values, expected 32 x 32");
  b = s.student;
  std::swap(b.aqlm[kGateProj], b.aqlm[kDownProj]);
  EXPECT_EQ(run(b, s.train.view(), s.heldout.view()),
            "block fine-tuning: mlp.gate_proj is [32, 64] but the block needs [64, 32]");

  BlockWindows narrow = s.train.view();
  narrow.hidden = 16;
  EXPECT_EQ(run(s.student, narrow, s.heldout.view()),
            "block fine-tuning: training windows have 16 values per token but the block's hidden size is 32");
  BlockWindows none = s.train.view();
  none.count = 0;
  EXPECT_EQ(run(s.student, none, s.heldout.view()), "block fine-tuning: no training windows");
  BlockWindows unloadable = s.heldout.view();
  unloadable.load = nullptr;
  EXPECT_EQ(run(s.student, s.train.view(), unloadable), "block fine-tuning: the held-out windows have no loader");

  WindowData zeros = s.train;
  std::fill(zeros.targets.begin(), zeros.targets.end(), 0.0f);
  EXPECT_EQ(run(s.student, zeros.view(), s.heldout.view()),
            "block fine-tuning: the training targets are all zero, so the relative loss is undefined");
  WindowData nan = s.train;
  nan.inputs[3 * kSeqlen * kHidden + 7] = NAN;
  EXPECT_EQ(run(s.student, nan.view(), s.heldout.view()), "block fine-tuning: training window 3 holds NaN or Inf");
  WindowData inf = s.heldout;
  inf.targets[5] = INFINITY;
  EXPECT_EQ(run(s.student, s.train.view(), inf.view()), "block fine-tuning: held-out window 0 holds NaN or Inf");

  BlockFinetuneOptions frozen = base_options();
  frozen.train_codebooks = frozen.train_scales = frozen.train_norms = false;
  EXPECT_EQ(error_of([&] { BlockFinetuner(frozen).run(s.student, s.train.view(), s.heldout.view()); }),
            "block fine-tuning: nothing to train (no AQLM linear and norms and biases frozen)");

  BlockFinetuneOptions wild = base_options();
  wild.adam.learning_rate = 1e6;  // diverges to Inf/NaN within a few steps
  wild.max_epochs = 50;
  const std::string diverged = error_of([&] { BlockFinetuner(wild).run(s.student, s.train.view(), BlockWindows{}); });
  EXPECT_EQ(diverged.rfind("block fine-tuning: the loss became ", 0), 0u) << diverged;
  EXPECT_NE(diverged.find("(learning rate 1e+06 too high?)"), std::string::npos) << diverged;
}

}  // namespace
}  // namespace aqlm
