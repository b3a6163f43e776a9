// The pipeline's pieces under one block: XTX accumulation, fp16 activation stores (memory and
// disk) and passes of windows through stories260K's block 0, against a float64 numpy reference
// (scripts/reference/pipeline_block_reference.py) that reads the llama2.c file on its own.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/thread_pool.h"
#include "core/model/model.h"
#include "core/model/safetensors.h"
#include "core/quant/pipeline_activations.h"
#include "core/quant/pipeline_block.h"
#include "core/quant/pipeline_xtx.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

std::vector<float> random_values(size_t n, uint64_t seed, double stddev = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = float(d(rng));
  return v;
}

std::vector<float> f32_of(const TensorView& t) {
  std::vector<float> v(size_t(t.numel()));
  convert_to_f32(t.dtype, t.data, v.data(), v.size());
  return v;
}

// max |a - b| over max |b|: one number that says how far a matrix is from the reference.
double relative_max_error(const std::vector<double>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

TEST(PipelineXtx, MeanOfOuterProductsInDoubleWhateverTheThreads) {
  const int64_t rows = 300, n = 150, ld = 160;  // n not a multiple of the 64-column tile
  const std::vector<float> x = random_values(size_t(rows * ld), 1);
  std::vector<double> expected(size_t(n * n), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) expected[size_t(i * n + j)] += double(x[size_t(r * ld + i)]) * x[size_t(r * ld + j)];
  for (double& e : expected) e /= double(rows);

  std::vector<std::vector<double>> results;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    XtxAccumulator acc(n);
    acc.add(pool, x.data(), 100, ld);  // in pieces, as the pipeline adds micro-batches
    acc.add(pool, x.data() + 100 * ld, 200, ld);
    EXPECT_EQ(acc.rows(), rows);
    results.push_back(acc.mean());
  }
  // Sums of 300 products of O(1) values in double: any float32 step would show at ~1e-7.
  for (size_t i = 0; i < expected.size(); ++i) ASSERT_NEAR(results[0][i], expected[i], 1e-12) << i;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(results[0][size_t(i * n + j)], results[0][size_t(j * n + i)]);
  EXPECT_EQ(results[0], results[1]);  // bit-identical: a resumed run recomputes XTX
  EXPECT_EQ(results[0], results[2]);
}

TEST(PipelineXtx, Errors) {
  EXPECT_THROW(XtxAccumulator(0), Error);
  XtxAccumulator acc(4);
  try {
    acc.mean();
    FAIL() << "mean of nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no calibration tokens"), std::string::npos) << e.what();
  }
  std::vector<float> x(12);
  EXPECT_THROW(acc.add(ThreadPool::global(), x.data(), 3, 3), Error);  // stride below the width
}

TEST(PipelineActivations, Fp16InMemoryAndOnDiskAlike) {
  const fs::path dir = test::temp_dir("activations");
  const int64_t windows = 5, seqlen = 7, hidden = 9;
  const std::vector<float> values = random_values(size_t(windows * seqlen * hidden), 2, 3.0);
  ActivationStore memory(windows, seqlen, hidden);
  ActivationStore disk(windows, seqlen, hidden, dir / "scratch.f16");
  EXPECT_FALSE(memory.on_disk());
  EXPECT_TRUE(disk.on_disk());
  EXPECT_EQ(fs::file_size(dir / "scratch.f16"), disk.bytes());
  const size_t per = memory.window_values();
  for (int64_t w = windows - 1; w >= 0; --w) {  // any order
    memory.write(w, values.data() + size_t(w) * per);
    disk.write(w, values.data() + size_t(w) * per);
  }
  std::vector<float> a(per), b(per);
  for (int64_t w = 0; w < windows; ++w) {
    memory.read(w, a.data());
    disk.read(w, b.data());
    for (size_t i = 0; i < per; ++i) {
      const float rounded = f16_to_f32(f32_to_f16(values[size_t(w) * per + i]));
      ASSERT_EQ(a[i], rounded);
      ASSERT_EQ(b[i], rounded);
    }
  }
  // save/load round trip between the two kinds, byte for byte.
  disk.save(dir / "saved.f16");
  EXPECT_FALSE(fs::exists(dir / "saved.f16.partial"));
  ActivationStore back(windows, seqlen, hidden);
  back.load(dir / "saved.f16");
  for (int64_t w = 0; w < windows; ++w) {
    back.read(w, a.data());
    memory.read(w, b.data());
    ASSERT_EQ(a, b);
  }
  // A saved file of another shape is refused with both sizes named.
  ActivationStore other(windows + 1, seqlen, hidden);
  try {
    other.load(dir / "saved.f16");
    FAIL() << "size mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("saved.f16: saved activations have 630 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(memory.read(windows, a.data()), Error);
  {
    ActivationStore scratch(1, 1, 1, dir / "gone.f16");
  }
  EXPECT_FALSE(fs::exists(dir / "gone.f16"));  // scratch files go with their store
  EXPECT_THROW(ActivationStore(1, 1, 1, dir / "no" / "such" / "folder.f16"), Error);
  fs::remove_all(dir);
}

class StoriesBlock0 : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model_path = test::shared_path("models/stories260K/stories260K.bin");
    if (!model_path) GTEST_SKIP() << "shared test data not found: models/stories260K/stories260K.bin";
    LoadOptions o;
    o.load_tokenizer = false;
    model_ = load_model(model_path->string(), o);
    reference_ = std::make_unique<SafetensorsFile>(
        test::source_path("tests/fixtures/quant/pipeline/stories260K_block0.safetensors").string());
    const TensorView& ids = reference_->find("ids")->view;
    windows_ = ids.dim(0);
    seqlen_ = ids.dim(1);
    const int64_t hidden = model_->config.hidden_size;
    inputs_ = std::make_unique<ActivationStore>(windows_, seqlen_, hidden);
    const std::vector<float> embedding = model_->weights.to_f32("model.embed_tokens.weight");
    std::vector<float> window(inputs_->window_values());
    for (int64_t w = 0; w < windows_; ++w) {
      for (int64_t t = 0; t < seqlen_; ++t) {
        const int32_t id = ids.as<int32_t>()[w * seqlen_ + t];
        std::copy_n(embedding.begin() + id * hidden, hidden, window.begin() + t * hidden);
      }
      inputs_->write(w, window.data());
    }
  }

  std::unique_ptr<Model> model_;
  std::unique_ptr<SafetensorsFile> reference_;
  std::unique_ptr<ActivationStore> inputs_;
  int64_t windows_ = 0, seqlen_ = 0;
};

TEST_F(StoriesBlock0, XtxOfEveryLinearInputAndOutputsMatchFloat64Reference) {
  const BlockShape shape = BlockShape::from_config(model_->config);
  const BlockWeights<float> fp = load_block_weights(*model_, 0);
  BlockPass pass(shape, 2, ThreadPool::global(), nullptr);  // 2 windows per call: micro-batches join up
  const std::pair<BlockLinear, const char*> cases[] = {
      {kQProj, "xtx_qkv"}, {kVProj, "xtx_qkv"}, {kOProj, "xtx_o"}, {kUpProj, "xtx_gate_up"}, {kDownProj, "xtx_down"}};
  for (const auto& [linear, name] : cases) {
    XtxAccumulator acc(shape.in_features(linear));
    ActivationStore outputs(windows_, seqlen_, shape.hidden);
    pass.run(fp, *inputs_, 0, windows_, &outputs, &acc, linear);
    EXPECT_EQ(acc.rows(), windows_ * seqlen_);
    // float32 forward vs float64: measured 7e-8..6e-7; a wrong norm, RoPE pair or mask is >1e-2.
    EXPECT_LT(relative_max_error(acc.mean(), f32_of(reference_->find(name)->view)), 5e-6) << name;

    const std::vector<float> expected = f32_of(reference_->find("outputs")->view);
    std::vector<float> y(outputs.window_values());
    std::vector<double> got;
    for (int64_t w = 0; w < windows_; ++w) {
      outputs.read(w, y.data());
      got.insert(got.end(), y.begin(), y.end());
    }
    // Outputs are stored as fp16 (2^-11 relative): the bound is that rounding, not the math.
    EXPECT_LT(relative_max_error(got, expected), 1e-3) << name;
  }
}

TEST_F(StoriesBlock0, OutputErrorAgainstTargets) {
  const BlockShape shape = BlockShape::from_config(model_->config);
  const BlockWeights<float> fp = load_block_weights(*model_, 0);
  BlockPass pass(shape, 3, ThreadPool::global(), nullptr);
  ActivationStore targets(windows_, seqlen_, shape.hidden);
  pass.run(fp, *inputs_, 0, windows_, &targets);
  // Against its own (fp16-stored) outputs the error is only the fp16 rounding of the targets.
  const OutputError same = pass.run(fp, *inputs_, 0, windows_, nullptr, nullptr, kQProj, &targets);
  EXPECT_LT(same.relative(), 1e-6);
  EXPECT_GT(same.target, 0);
  // Halving the down projection moves the outputs by a known, large amount.
  BlockWeights<float> half = fp;
  for (float& v : half.linear[kDownProj]) v *= 0.5f;
  const OutputError changed = pass.run(half, *inputs_, 0, windows_, nullptr, nullptr, kQProj, &targets);
  EXPECT_GT(changed.relative(), 1e-3);

  std::atomic<bool> cancel{true};
  BlockPass cancelled(shape, 1, ThreadPool::global(), &cancel);
  EXPECT_THROW(cancelled.run(fp, *inputs_, 0, windows_, nullptr), Error);
}

}  // namespace
}  // namespace aqlm
