// The GPU AQLM layer quantizer (core/quant/aqlm_quantizer_cuda.h) against the CPU one on fresh
// synthetic layers: the candidate search bit for bit, k-means and the initialisation (the same
// seeded choices and the same additions, so equal up to rare near-ties), whole runs (the same
// algorithm with fp32 products summed in another order: close, not identical), the float64
// relative error, determinism, and the errors. GPU tests skip without a usable GPU; the
// "no GPU" behaviour is checked where there is none.
#include "core/quant/aqlm_quantizer_cuda.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/candidate_search.h"
#include "core/quant/kmeans.h"
#include "core/quant/synthetic_layer.h"

namespace aqlm {
namespace {

#define AQLM_REQUIRE_GPU()                                                      \
  do {                                                                          \
    const std::string why = cuda_quantization_unavailable_reason();             \
    if (!why.empty()) GTEST_SKIP() << why;                                      \
  } while (0)

LayerProblem layer(int64_t out, int64_t in, uint64_t seed) {
  SyntheticLayerOptions o;
  o.out_features = out;
  o.in_features = in;
  o.seed = seed;
  return make_synthetic_layer(o);
}

AqlmOptions options(const char* config, int epochs, int steps, ComputeDevice device = ComputeDevice::Cpu) {
  AqlmOptions o;
  o.config = AqlmConfig::parse(config);
  o.max_epochs = epochs;
  o.adam_steps = steps;
  o.relative_tolerance = 0;
  o.device = device;
  return o;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

double agreement(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return double(same) / double(a.size());
}

TEST(AqlmCuda, CandidateSearchIsBitIdenticalToTheCpuKernels) {
  AQLM_REQUIRE_GPU();
  for (int g : {4, 8, 16}) {
    std::mt19937_64 rng{uint64_t(g)};
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t count = 3001, n = 4099;
    std::vector<float> cand(size_t(count * g)), bias(static_cast<size_t>(count)), queries(size_t(n * g));
    for (auto& v : cand) v = normal(rng);
    for (auto& v : bias) v = std::abs(normal(rng)) * float(g);
    for (auto& v : queries) v = normal(rng);
    const CandidateSet set(g, count, cand.data(), bias.data());
    std::vector<uint32_t> cpu_index(static_cast<size_t>(n)), gpu_index(static_cast<size_t>(n));
    std::vector<float> cpu_score(static_cast<size_t>(n)), gpu_score(static_cast<size_t>(n));
    search_nearest(ThreadPool::global(), set, queries.data(), n, cpu_index.data(), cpu_score.data());
    search_nearest_on_gpu(g, count, cand.data(), bias.data(), queries.data(), n, gpu_index.data(), gpu_score.data());
    EXPECT_EQ(cpu_index, gpu_index) << "g " << g;
    EXPECT_EQ(cpu_score, gpu_score) << "g " << g;
    const int k = 8;
    std::vector<uint32_t> cpu_top(size_t(n * k)), gpu_top(size_t(n * k));
    std::vector<float> cpu_top_score(size_t(n * k)), gpu_top_score(size_t(n * k));
    search_top_k(ThreadPool::global(), set, queries.data(), n, k, cpu_top.data(), cpu_top_score.data());
    search_top_k_on_gpu(g, count, cand.data(), bias.data(), queries.data(), n, k, gpu_top.data(), gpu_top_score.data());
    EXPECT_EQ(cpu_top, gpu_top) << "g " << g;
    EXPECT_EQ(cpu_top_score, gpu_top_score) << "g " << g;
  }
}

// The same sample, the same start and Lloyd steps with member sums in the same order: only a
// centroid norm rounded differently (fma contraction by another compiler) could flip an
// assignment, so nearly all must agree and the centroids stay within float rounding.
TEST(AqlmCuda, KmeansFollowsTheCpuKmeans) {
  AQLM_REQUIRE_GPU();
  for (const auto& [g, k, ppc] : {std::tuple<int, int64_t, int64_t>{8, 256, 0}, {4, 1000, 3}, {16, 64, 0}}) {
    const int64_t n = 12011;
    std::mt19937_64 rng{uint64_t(k)};
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> points(size_t(n * g));
    for (auto& v : points) v = normal(rng);
    KMeansOptions ko;
    ko.max_iterations = 12;
    ko.max_points_per_centroid = ppc;
    ko.seed = 7;
    const KMeansResult cpu = kmeans(ThreadPool::global(), points.data(), n, g, k, ko);
    const KMeansResult gpu = kmeans_cuda(points.data(), n, g, k, ko);
    size_t same = 0;
    for (size_t i = 0; i < cpu.assignment.size(); ++i) same += cpu.assignment[i] == gpu.assignment[i];
    std::printf("k-means g %d k %lld: %zu of %lld assignments equal, iterations %d / %d\n", g, (long long)k, same,
                (long long)n, cpu.iterations, gpu.iterations);
    EXPECT_GE(double(same), 0.999 * double(n));
    ASSERT_EQ(cpu.centroids.size(), gpu.centroids.size());
    double worst = 0;
    for (size_t i = 0; i < cpu.centroids.size(); ++i) worst = std::max(worst, double(std::abs(cpu.centroids[i] - gpu.centroids[i])));
    EXPECT_LT(worst, 0.05) << "centroid moved by a flipped assignment more than one member can move it";
  }
}

TEST(AqlmCuda, InitializationFollowsTheCpu) {
  AQLM_REQUIRE_GPU();
  const LayerProblem p = layer(96, 256, 3);
  for (const char* config : {"2x8g8", "1x10g4"}) {
    const AqlmOptions o = options(config, 0, 0);
    const QuantizedLayer cpu = initialize_aqlm(p, o), gpu = initialize_aqlm_cuda(p, o);
    for (size_t i = 0; i < cpu.scales.size(); ++i) EXPECT_NEAR(gpu.scales[i], cpu.scales[i], 1e-6 * cpu.scales[i]);
    const double same = agreement(cpu.codes, gpu.codes);
    std::printf("%s initialisation: %.4f of the codes equal\n", config, same);
    EXPECT_GE(same, 0.99) << config;
  }
}

struct RunPair {
  AqlmResult cpu, gpu;
};

RunPair run_both(const LayerProblem& p, AqlmOptions o) {
  RunPair r;
  r.cpu = quantize_aqlm(p, o);
  o.device = ComputeDevice::Cuda;
  r.gpu = quantize_aqlm(p, o);
  return r;
}

// Whole runs: after k-means the two paths differ only by rounding, and the code search picks
// among near-equal codewords differently once R's fp32 sums differ, so the errors agree to a
// few percent (measured: see docs/gpu-notes.md), while each run's own numbers are exact.
TEST(AqlmCuda, WholeRunsMatchTheCpuQuantizer) {
  AQLM_REQUIRE_GPU();
  struct Case {
    const char* config;
    int64_t out, in;
    int beam;
  };
  for (const Case& c : {Case{"2x8g8", 192, 256, 8}, Case{"1x12g8", 160, 384, 1}, Case{"2x6g4", 37, 72, 4}}) {
    const LayerProblem p = layer(c.out, c.in, 21);
    AqlmOptions o = options(c.config, 2, 15);
    o.beam_size = c.beam;
    const RunPair r = run_both(p, o);
    std::printf("%s [%lld x %lld]: init %.5f / %.5f, after Adam %.5f / %.5f, final %.5f / %.5f (CPU / GPU)\n",
                c.config, (long long)c.out, (long long)c.in, r.cpu.initial_relative_error, r.gpu.initial_relative_error,
                r.cpu.epochs[0].relative_error_after_adam, r.gpu.epochs[0].relative_error_after_adam,
                r.cpu.relative_error, r.gpu.relative_error);
    ASSERT_EQ(r.gpu.epochs.size(), 2u);
    EXPECT_NEAR(r.gpu.initial_relative_error, r.cpu.initial_relative_error, 0.01 * r.cpu.initial_relative_error);
    EXPECT_NEAR(r.gpu.epochs[0].relative_error_after_adam, r.cpu.epochs[0].relative_error_after_adam,
                0.01 * r.cpu.epochs[0].relative_error_after_adam);
    EXPECT_NEAR(r.gpu.relative_error, r.cpu.relative_error, 0.05 * r.cpu.relative_error) << c.config;
    for (const AqlmEpochStats& e : r.gpu.epochs) EXPECT_LE(e.relative_error, e.relative_error_after_adam * (1 + 1e-6));
    EXPECT_LT(r.gpu.relative_error, 0.5 * r.gpu.initial_relative_error);
    // The returned number is the returned layer's float64 error, as the CPU computes it.
    EXPECT_NEAR(r.gpu.relative_error, p.relative_error(r.gpu.layer.dequantize()), 1e-9 * r.gpu.relative_error);
    r.gpu.layer.validate("GPU result");
    EXPECT_GE(agreement(r.cpu.layer.codes, r.gpu.layer.codes), 0.5) << "the same local optimum, mostly";
  }
}

TEST(AqlmCuda, RunsAreDeterministicAndStopOnTolerance) {
  AQLM_REQUIRE_GPU();
  const LayerProblem p = layer(128, 256, 5);
  AqlmOptions o = options("1x8g8", 50, 10, ComputeDevice::Cuda);
  o.relative_tolerance = 0.05;
  const AqlmResult a = quantize_aqlm(p, o), b = quantize_aqlm(p, o);
  EXPECT_EQ(a.layer.codes, b.layer.codes);
  EXPECT_EQ(a.layer.codebooks, b.layer.codebooks);
  EXPECT_EQ(a.relative_error, b.relative_error);
  ASSERT_LT(a.epochs.size(), 50u) << "a 5% tolerance stops well before 50 epochs";
  const auto& last = a.epochs.back();
  const double before = a.epochs.size() > 1 ? a.epochs[a.epochs.size() - 2].relative_error : a.initial_relative_error;
  EXPECT_LT((before - last.relative_error) / before, 0.05);
}

TEST(AqlmCuda, ProgressReportsEveryPhase) {
  AQLM_REQUIRE_GPU();
  const LayerProblem p = layer(64, 128, 9);
  std::vector<AqlmProgress> seen;
  const AqlmResult r = quantize_aqlm_cuda(p, options("2x8g8", 1, 3), [&](const AqlmProgress& e) { seen.push_back(e); });
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().phase, AqlmPhase::Initialization);
  EXPECT_EQ(seen.back().phase, AqlmPhase::BeamSearch);
  EXPECT_EQ(seen.back().step, 128 / 8);
  EXPECT_NEAR(seen.back().relative_error, r.epochs[0].relative_error, 1e-12);
  int adam = 0;
  for (const AqlmProgress& e : seen) adam += e.phase == AqlmPhase::CodebookUpdate;
  EXPECT_EQ(adam, 4);  // steps 0, 1, 2 and the final report
}

TEST(AqlmCuda, RelativeErrorMatchesTheCpu) {
  AQLM_REQUIRE_GPU();
  const LayerProblem p = layer(70, 136, 2);
  std::vector<float> w = p.weight;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.01f);
  for (auto& v : w) v += normal(rng);
  // Both in float64 from the same float difference: only the summation order differs.
  EXPECT_NEAR(relative_error_cuda(p, w), p.relative_error(w), 1e-10 * p.relative_error(w));
}

TEST(AqlmCuda, ErrorsAreTheCpuQuantizersErrors) {
  AQLM_REQUIRE_GPU();
  const LayerProblem p = layer(32, 64, 1);
  const std::string bad_group = error_of([&] { quantize_aqlm_cuda(p, options("2x8g6", 1, 1)); });
  EXPECT_EQ(bad_group, error_of([&] { quantize_aqlm(p, options("2x8g6", 1, 1)); }));
  EXPECT_NE(bad_group.find("group size 6"), std::string::npos) << bad_group;
  std::atomic<bool> cancel{true};
  AqlmOptions o = options("2x8g8", 1, 1, ComputeDevice::Cuda);
  o.cancel = &cancel;
  EXPECT_EQ(error_of([&] { quantize_aqlm(p, o); }), "cancelled");
  LayerProblem nan = p;
  nan.weight[5] = NAN;
  EXPECT_NE(error_of([&] { quantize_aqlm_cuda(nan, options("2x8g8", 1, 1)); }).find("must be finite"), std::string::npos);
}

TEST(AqlmCuda, WithoutAGpuTheDeviceOptionIsAClearError) {
  const std::string why = cuda_quantization_unavailable_reason();
  if (why.empty()) GTEST_SKIP() << "a GPU is available here";
  const LayerProblem p = layer(16, 32, 1);
  const std::string e = error_of([&] { quantize_aqlm(p, options("2x8g8", 1, 1, ComputeDevice::Cuda)); });
  EXPECT_NE(e.find("AQLM on the GPU"), std::string::npos) << e;
  EXPECT_NE(e.find(why), std::string::npos) << e;
}

TEST(ComputeDevice, ParsesItsNames) {
  EXPECT_EQ(parse_compute_device("cpu"), ComputeDevice::Cpu);
  EXPECT_EQ(parse_compute_device("cuda"), ComputeDevice::Cuda);
  EXPECT_STREQ(compute_device_name(ComputeDevice::Cuda), "cuda");
  EXPECT_EQ(error_of([] { parse_compute_device("gpu"); }), "unknown device 'gpu' (choose cpu or cuda)");
}

}  // namespace
}  // namespace aqlm
