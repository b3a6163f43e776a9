// The CUDA engine against the float64 references of the tiny fixtures (Qwen2 bf16 with
// biases, Llama-3 rope scaling, Mistral sliding window, AQLM 2x8g8 / 1x10g4 / 1x8g8 with a
// dense k_proj) and against the CPU engine on stories260K (golden greedy text, logits,
// decode = prefill, graphs = eager, argmax, chunking, rewind), plus its one-line errors.
// Without a GPU the GPU tests skip; a build without CUDA checks its error message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "core/runtime/engine.h"
#include "core/runtime/generator.h"
#include "core/text/tokenizer.h"
#include "tests/runtime/runtime_test_models.h"
#ifdef AQLM_HAVE_CUDA
#include "core/runtime/cuda_engine.h"
#include "kernels/cuda/cuda_check.h"
#endif

namespace aqlm {
namespace {

using test::load_test_weights;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

EngineOptions on_cuda(int max_batch = 512, int context = 0) {
  EngineOptions o;
  o.device = Device::Cuda;
  o.max_batch = max_batch;
  o.context_length = context;
  return o;
}

#ifndef AQLM_HAVE_CUDA

TEST(CudaEngine, ABuildWithoutCudaSaysSo) {
  const auto model = load_test_weights(test::tiny_model_dir("tiny_llama3"));
  EXPECT_EQ(error_of([&] { create_engine(*model, on_cuda()); }),
            "--device cuda: this build has no CUDA support (it was built without the CUDA compiler); use --device cpu");
}

#else

#define AQLM_REQUIRE_GPU() \
  if (cuda::device_count() == 0) GTEST_SKIP() << cuda::no_device_reason()

std::vector<float> all_logits(Engine& e, const std::vector<int32_t>& ids) {
  std::vector<float> logits(ids.size() * size_t(e.config().vocab_size));
  e.forward(ids, logits.data(), true);
  return logits;
}

// max |a - b| / max |b| over the whole array.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    d = std::max(d, double(std::fabs(a[i] - b[i])));
    m = std::max(m, double(std::fabs(b[i])));
  }
  return d / m;
}

int32_t first_max(const float* x, size_t n) { return int32_t(std::max_element(x, x + n) - x); }

TEST(CudaEngine, NoGpuIsOneClearLine) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a GPU is present";
  const auto model = load_test_weights(test::tiny_model_dir("tiny_llama3"));
  const std::string message = error_of([&] { create_engine(*model, on_cuda()); });
  EXPECT_EQ(message.rfind("--device cuda: no CUDA device found (", 0), 0u) << message;
}

// --- tiny fixtures against their float64 references --------------------------------------

// Activations are rounded to fp16 (11-bit significand) before every product, weights are
// fp16 in the fixtures already; over 2-3 blocks that leaves ~1e-3 relative on the logits,
// so 1e-2 (the brief's bar) fails for a wrong mask, rope band, bias or head. bf16 keeps 8
// bits: the same chain gives ~1e-2, so 4e-2 there.
double tolerance(const Model& m) { return m.config.torch_dtype == "bfloat16" ? 4e-2 : 1e-2; }

std::filesystem::path fixture_dir(const std::string& name) {
  return name == "aqlm_tiny" ? test::source_path("tests/fixtures/model/aqlm_tiny") : test::tiny_model_dir(name);
}

class CudaTinyModel : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaTinyModel, PrefillDecodeAndSmallBatchesMatchTheReference) {
  AQLM_REQUIRE_GPU();
  const std::string name = GetParam();
  const auto model = load_test_weights(fixture_dir(name));
  const size_t V = size_t(model->config.vocab_size);
  std::vector<int32_t> ids;
  std::vector<std::vector<double>> ref;
  if (name == "aqlm_tiny") {
    // No float64 reference for this fixture: the CPU engine (itself checked against numpy on
    // the other fixtures) is the reference.
    ids = {1, 5, 9, 13, 2, 40, 41, 7, 30, 3, 11, 17};
    auto cpu = create_engine(*model);
    const auto l = all_logits(*cpu, ids);
    for (size_t t = 0; t < ids.size(); ++t) ref.emplace_back(l.begin() + long(t * V), l.begin() + long((t + 1) * V));
  } else {
    const auto r = test::read_tiny_reference(name);
    ids = r.ids;
    ref = r.logits;
  }
  const double tol = tolerance(*model);

  // One batch: > 8 tokens, so AQLM layers run dequantize + cuBLAS, attention the tiled kernel.
  auto prefill = create_engine(*model, on_cuda());
  EXPECT_EQ(prefill->device(), Device::Cuda);
  const auto logits = all_logits(*prefill, ids);
  for (size_t t = 0; t < ids.size(); ++t)
    EXPECT_LT(test::max_relative_error(logits.data() + t * V, ref[t]), tol) << name << " prefill position " << t;

  // Token by token: the single-token step (AQLM gemv, split-K attention, CUDA graphs).
  auto step = create_engine(*model, on_cuda());
  std::vector<float> one(V);
  for (size_t t = 0; t < ids.size(); ++t) {
    step->forward(std::span<const int32_t>(&ids[t], 1), one.data());
    EXPECT_LT(test::max_relative_error(one.data(), ref[t]), tol) << name << " decode position " << t;
  }

  // Batches of 5: the AQLM gemv kernels on several tokens, outputs gathered into q|k|v rows.
  auto batches = create_engine(*model, on_cuda(5));
  const auto small = all_logits(*batches, ids);
  for (size_t t = 0; t < ids.size(); ++t)
    EXPECT_LT(test::max_relative_error(small.data() + t * V, ref[t]), tol) << name << " batch-of-5 position " << t;
}

INSTANTIATE_TEST_SUITE_P(Families, CudaTinyModel,
                         ::testing::Values("tiny_qwen2", "tiny_llama3", "tiny_mistral", "tiny_aqlm_2x8",
                                           "tiny_aqlm_1x10", "aqlm_tiny"));

// --- stories260K against the CPU engine ----------------------------------------------------

std::vector<int32_t> stories_prompt() {
  std::vector<int32_t> ids = test::stories_golden_first_ids();
  ids.resize(23);
  return ids;
}

TEST(CudaEngine, StoriesGoldenGreedyText) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_model(path.string());
  auto engine = create_engine(*model, on_cuda());
  Generator gen(*engine);
  GenerationConfig c;
  c.max_new_tokens = 80;
  c.sampler.temperature = 0;  // greedy: the generator takes the engine's device argmax
  std::vector<int32_t> ids;
  const GenerationStats st =
      gen.generate(std::vector<int32_t>{model->tokenizer->bos_id()}, c, [&](int32_t id) { ids.push_back(id); });
  ASSERT_EQ(ids.size(), 80u);
  const auto& golden_ids = test::stories_golden_first_ids();
  for (size_t i = 1; i < golden_ids.size(); ++i) EXPECT_EQ(ids[i - 1], golden_ids[i]) << "token " << i;
  std::string raw;
  for (int32_t id : ids) raw += model->tokenizer->token_bytes(id);
  EXPECT_EQ(raw,
            " Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
            "saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said, \"Lily, let's go to");
  EXPECT_GT(st.decode_tokens_per_s, 0);
}

TEST(CudaEngine, StoriesLogitsMatchTheCpuEngine) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  const auto ids = stories_prompt();
  auto cpu = create_engine(*model);
  const auto expected = all_logits(*cpu, ids);
  const size_t V = size_t(model->config.vocab_size);
  // fp16 activations through 5 blocks (see tolerance()): 1e-2 of the largest logit.
  auto gpu = create_engine(*model, on_cuda());
  EXPECT_LT(relative_difference(all_logits(*gpu, ids), expected), 1e-2);
  // Decode steps and any split of the prompt into batches agree with the CPU too.
  for (int batch : {1, 2, 7, 9}) {
    auto e = create_engine(*model, on_cuda(batch));
    EXPECT_LT(relative_difference(all_logits(*e, ids), expected), 1e-2) << "max_batch " << batch;
  }
  auto step = create_engine(*model, on_cuda());
  std::vector<float> got(ids.size() * V);
  for (size_t t = 0; t < ids.size(); ++t) step->forward(std::span<const int32_t>(&ids[t], 1), got.data() + t * V);
  EXPECT_LT(relative_difference(got, expected), 1e-2);
}

// GGUF models reach the engine as float32 tensors dequantized on load (and q/k un-permuted):
// the GPU must agree with the CPU on them exactly as on the other formats.
class CudaGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGguf, LogitsMatchTheCpuEngine) {
  AQLM_REQUIRE_GPU();
  const auto model = load_test_weights(test::source_path("tests/fixtures/model/" + GetParam()));
  std::vector<int32_t> ids;
  for (int i = 0; i < 11; ++i) ids.push_back(int32_t((7 * i + 3) % model->config.vocab_size));
  auto cpu = create_engine(*model);
  const auto expected = all_logits(*cpu, ids);
  auto gpu = create_engine(*model, on_cuda());
  EXPECT_LT(relative_difference(all_logits(*gpu, ids), expected), 1e-2);
  auto step = create_engine(*model, on_cuda(1));
  EXPECT_LT(relative_difference(all_logits(*step, ids), expected), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGguf, ::testing::Values("tiny_llama.gguf", "tiny_qwen2.gguf", "rope_linear.gguf"),
                         [](const auto& info) {
                           std::string n = info.param.substr(0, info.param.find('.'));
                           return n;
                         });

// The default model as the studio's chat runs it (Q4_1/Q8_0 GGUF, tied embeddings, 9 heads
// over 3 KV heads): first 64 tokens of a fixed id sequence, GPU against CPU.
TEST(CudaEngine, SmolLM2GgufLogitsMatchTheCpuEngine) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SMOLLM2(path);
  const auto model = load_test_weights(path);
  std::vector<int32_t> ids = {1};
  for (int i = 1; i < 64; ++i) ids.push_back(int32_t(100 + (131 * i) % 20000));
  auto cpu = create_engine(*model);
  const auto expected = all_logits(*cpu, ids);
  auto gpu = create_engine(*model, on_cuda());
  // 30 blocks of fp16 activations: 2e-2 of the largest logit.
  EXPECT_LT(relative_difference(all_logits(*gpu, ids), expected), 2e-2);
}

TEST(CudaEngine, GraphReplaysAreBitIdenticalToEagerSteps) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  const auto ids = stories_prompt();
  CudaEngineSettings eager;
  eager.use_graphs = false;
  auto a = create_cuda_engine(*model, on_cuda());
  auto b = create_cuda_engine(*model, on_cuda(), eager);
  const size_t V = size_t(model->config.vocab_size);
  std::vector<float> la(V), lb(V);
  for (size_t t = 0; t < ids.size(); ++t) {
    a->forward(std::span<const int32_t>(&ids[t], 1), la.data());
    b->forward(std::span<const int32_t>(&ids[t], 1), lb.data());
    ASSERT_EQ(la, lb) << "step " << t;  // the same kernels in the same order: same bits
  }
}

TEST(CudaEngine, DeviceArgmaxEqualsTheArgmaxOfTheLogits) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  const auto ids = stories_prompt();
  auto a = create_engine(*model, on_cuda());
  auto b = create_engine(*model, on_cuda());
  const size_t V = size_t(model->config.vocab_size);
  std::vector<float> logits(V);
  // Prefill (batch path), then single steps (graph path).
  const int32_t first = a->forward_argmax(std::span<const int32_t>(ids.data(), 10));
  b->forward(std::span<const int32_t>(ids.data(), 10), logits.data());
  EXPECT_EQ(first, first_max(logits.data(), V));
  for (size_t t = 10; t < ids.size(); ++t) {
    const int32_t got = a->forward_argmax(std::span<const int32_t>(&ids[t], 1));
    b->forward(std::span<const int32_t>(&ids[t], 1), logits.data());
    EXPECT_EQ(got, first_max(logits.data(), V)) << "step " << t;
  }
  EXPECT_EQ(a->position(), int(ids.size()));
}

TEST(CudaEngine, RewindThenContinueEqualsAFreshRun) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  const auto ids = stories_prompt();
  const size_t V = size_t(model->config.vocab_size);
  // Both engines run BOS alone, then single steps: the same kernels on the same inputs. The
  // detour's cache rows (a 7-token batch) are overwritten step by step and never read
  // before, so every logit must come out bit-identical.
  auto e = create_engine(*model, on_cuda());
  auto fresh = create_engine(*model, on_cuda());
  std::vector<float> got(V), want(V);
  e->forward(std::span<const int32_t>(ids.data(), 1), got.data());
  fresh->forward(std::span<const int32_t>(ids.data(), 1), want.data());
  const std::vector<int32_t> detour = {300, 301, 302, 303, 304, 305, 306};
  e->forward(detour, got.data());
  e->rewind(1);
  EXPECT_EQ(e->position(), 1);
  for (size_t t = 1; t < ids.size(); ++t) {
    e->forward(std::span<const int32_t>(&ids[t], 1), got.data());
    fresh->forward(std::span<const int32_t>(&ids[t], 1), want.data());
    ASSERT_EQ(got, want) << "step " << t;
  }
}

TEST(CudaEngine, ReportsItsShapeAndSkipsTheHeadWithoutLogits) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  auto e = create_engine(*model, on_cuda(512, 40));
  EXPECT_EQ(e->context_length(), 40);
  EXPECT_EQ(create_engine(*model, on_cuda())->context_length(), 512);
  const auto ids = stories_prompt();
  e->forward(std::span<const int32_t>(ids.data(), 20), nullptr, true);  // cache warm-up only
  EXPECT_EQ(e->position(), 20);
  std::vector<float> a(size_t(model->config.vocab_size)), b(a.size());
  e->forward(std::span<const int32_t>(ids.data() + 20, 3), a.data());
  auto fresh = create_engine(*model, on_cuda());
  fresh->forward(std::span<const int32_t>(ids.data(), 23), b.data());
  EXPECT_LT(relative_difference(a, b), 1e-2);
}

// --- unhappy paths ----------------------------------------------------------------------

TEST(CudaEngine, RejectsWhatTheCpuEngineRejectsWithTheSameWords) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  auto e = create_engine(*model, on_cuda(512, 10));
  std::vector<float> logits(size_t(model->config.vocab_size));
  const std::vector<int32_t> eight(8, 5), three(3, 5), bad = {1, 512};
  e->forward(eight, logits.data());
  EXPECT_EQ(error_of([&] { e->forward(three, logits.data()); }),
            "the context is full: 8 tokens cached + 3 new exceed the 10-token context");
  EXPECT_EQ(e->position(), 8);
  EXPECT_EQ(error_of([&] { e->forward(bad, logits.data()); }), "token id 512 is outside the vocabulary (0..511)");
  EXPECT_EQ(error_of([&] { e->forward_argmax(bad); }), "token id 512 is outside the vocabulary (0..511)");
  EXPECT_EQ(error_of([&] { e->forward({}, logits.data()); }), "forward: no tokens to run");
  EXPECT_EQ(error_of([&] { e->rewind(9); }), "cannot rewind the KV cache to position 9: it holds 8 tokens");

  auto broken = load_test_weights(path);
  broken->weights.remove("model.layers.3.mlp.up_proj.weight");
  EXPECT_EQ(error_of([&] { create_engine(*broken, on_cuda()); }), "missing tensor model.layers.3.mlp.up_proj.weight");
  broken = load_test_weights(path);
  broken->weights.add_f32("model.layers.1.self_attn.k_proj.weight", {64, 64}, std::vector<float>(64 * 64));
  EXPECT_EQ(error_of([&] { create_engine(*broken, on_cuda()); }),
            "tensor model.layers.1.self_attn.k_proj.weight has shape [64, 64] but the model needs [32, 64]");
}

TEST(CudaEngine, NotEnoughGpuMemoryNamesBothSizes) {
  AQLM_REQUIRE_GPU();
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  // 2^30 positions: a KV cache of 5 layers x 2 x 32 x 2 bytes per position = 687 GB (and a
  // 34 GB RoPE table), more than any GPU has.
  const std::string message = error_of([&] { create_engine(*model, on_cuda(512, 1 << 30)); });
  const std::string head = "not enough GPU memory: the model needs ";
  ASSERT_EQ(message.rfind(head, 0), 0u) << message;
  EXPECT_GT(std::stod(message.substr(head.size())), 687.0) << message;
  EXPECT_NE(message.find(" GB free on "), std::string::npos) << message;
}

TEST(CudaEngine, MemoryEstimateCountsTheKvCache) {
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_test_weights(path);
  const ModelConfig& c = model->config;
  // Above 2048 positions the decode attention uses its largest split count, so only the KV
  // cache (fp16) and the RoPE table (fp32 cos + sin) grow with the context.
  const size_t a = cuda_engine_memory_bytes(*model, on_cuda(512, 4096));
  const size_t b = cuda_engine_memory_bytes(*model, on_cuda(512, 8192));
  EXPECT_EQ(b - a, size_t(4096) * (size_t(2 * c.num_layers * c.kv_dim()) * 2 + size_t(c.head_dim) * 4));
  // fp16 weights (260K parameters: ~0.5 MB), plus fixed workspaces; never less than the weights.
  EXPECT_GT(a, size_t(c.num_parameters()) * 2);
}

#endif  // AQLM_HAVE_CUDA

}  // namespace
}  // namespace aqlm
