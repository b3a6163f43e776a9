// The CUDA AQLM kernels against the CPU double-precision reference (itself checked against
// numpy in kernels/cpu/aqlm_gemv_test.cpp), on fresh random layers and inputs, with the
// output poisoned before every run; every lookup-table instance (slabs per set), both launch
// modes of the reduction, layers prepared from host and from device memory, and replay from a
// CUDA graph. Without a GPU the kernel tests skip with the reason; the argument checks need
// none and always run.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cpu/aqlm_gemv.h"
#include "kernels/cpu/aqlm_test_data.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {
namespace {

#define AQLM_REQUIRE_GPU() \
  if (device_count() == 0) GTEST_SKIP() << no_device_reason()

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes), p_(device_alloc(bytes, "a test buffer")) {}
  ~DeviceBuffer() { device_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  void upload(const void* src) { check(cudaMemcpy(p_, src, bytes_, cudaMemcpyHostToDevice), "uploading test data"); }
  void download(void* dst) const {
    check(cudaMemcpy(dst, p_, bytes_, cudaMemcpyDeviceToHost), "downloading test results");
  }
  // 0xff bytes: NaN in fp16 and bf16, so an unwritten output cannot pass.
  void poison() { check(cudaMemset(p_, 0xff, bytes_), "poisoning a test buffer"); }

 private:
  size_t bytes_;
  void* p_;
};

// A layer's storage on the GPU exactly as the format stores it (to prepare from device memory).
struct DeviceLayer {
  explicit DeviceLayer(const test::AqlmLayer& l)
      : codes(l.codes.size()), codebooks(l.codebooks.size() * 2), scales(l.scales.size() * 2) {
    codes.upload(l.codes.data());
    codebooks.upload(l.codebooks.data());
    scales.upload(l.scales.data());
    view = l.view();
    view.codes = codes.get();
    view.codebooks = static_cast<const uint16_t*>(codebooks.get());
    view.scales = static_cast<const uint16_t*>(scales.get());
  }
  DeviceBuffer codes, codebooks, scales;
  AqlmView view;
};

uint16_t to_act(float v, DType t) { return t == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v); }
float from_act(uint16_t v, DType t) { return t == DType::BF16 ? bf16_to_f32(v) : f16_to_f32(v); }
const char* name_of(DType t) { return t == DType::BF16 ? "bf16" : "fp16"; }

// Random activations rounded to the activation type: the bits to upload and their exact
// float values (what the reference multiplies).
void random_activations(int64_t count, DType act, uint64_t seed, std::vector<uint16_t>& bits,
                        std::vector<float>& values) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  bits.resize(size_t(count));
  values.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    bits[size_t(i)] = to_act(normal(rng), act);
    values[size_t(i)] = from_act(bits[size_t(i)], act);
  }
}

struct GemvCase {
  int64_t out, in;
  int M, B;
  int n;
  DType act;
  int code_bytes = 0;  // 0: as the format stores B (int8 for B <= 8)
};

std::string case_name(const GemvCase& c) {
  return str(c.M, "x", c.B, "g8_", c.out, "x", c.in, "_n", c.n, "_", name_of(c.act), c.code_bytes == 2 ? "_int16" : "");
}

test::AqlmLayer make_layer(const GemvCase& c, uint64_t seed) {
  test::AqlmLayer l = test::random_layer(c.out, c.in, c.M, c.B, 8, seed);
  if (c.code_bytes == 2 && l.code_bytes == 1) {  // the same codes stored as int16
    test::AqlmLayer wide;
    wide.allocate(l.out, l.in, l.M, l.B, l.g, 2);
    wide.codebooks = l.codebooks;
    wide.scales = l.scales;
    const AqlmView v = l.view();
    for (int64_t o = 0; o < l.out; ++o)
      for (int64_t j = 0; j < v.groups(); ++j)
        for (int m = 0; m < l.M; ++m) wide.store_code((o * v.groups() + j) * l.M + m, v.code(o, j, m));
    return wide;
  }
  return l;
}

class AqlmGemvCuda : public ::testing::TestWithParam<GemvCase> {};

// The kernel variants a case runs: the built-in choice, then (lookup-table layers) every
// slab count per set the token count allows, and the reduction launched plainly.
std::vector<AqlmGemvOptions> variants(const GemvCase& c) {
  std::vector<AqlmGemvOptions> v{AqlmGemvOptions{}};
  if (c.B <= 8) {
    const int T = c.n == 1 ? 1 : c.n == 2 ? 2 : 4;  // per pass of at most 4 tokens
    for (int k : {1, 2, 4, 8})
      if (k * T <= 8) v.push_back(AqlmGemvOptions{k, true});
  }
  v.push_back(AqlmGemvOptions{0, false});
  return v;
}

// Every output within fp32 accumulation error plus one rounding to the output type of the
// double reference; every output written; two runs bit-identical (the partial sums are added
// in a fixed order).
TEST_P(AqlmGemvCuda, MatchesCpuReference) {
  AQLM_REQUIRE_GPU();
  const GemvCase c = GetParam();
  const uint64_t seed = uint64_t(c.out * 31 + c.in * 7 + c.M * 3 + c.B + c.n);
  const test::AqlmLayer layer = make_layer(c, seed);
  const AqlmCudaPlan plan = prepare(layer.view(), Memory::Host, "test layer");
  std::vector<uint16_t> x_bits;
  std::vector<float> x;
  random_activations(c.n * c.in, c.act, seed + 1, x_bits, x);
  std::vector<float> ref(size_t(c.n * c.out));
  cpu::aqlm_gemv_reference(layer.view(), x.data(), c.n, c.in, ref.data(), c.out, 0, c.out);
  const auto abs_sum = test::abs_products(layer.view(), x.data(), c.n, c.in);

  DeviceBuffer dx(x_bits.size() * 2), dy(ref.size() * 2);
  dx.upload(x_bits.data());
  AqlmGemvWorkspace ws;
  for (const AqlmGemvOptions& options : variants(c)) {
    SCOPED_TRACE(str("slabs per set ", options.slabs_per_set, ", dependent launch ", options.dependent_launch));
    std::vector<uint16_t> first;
    for (int run = 0; run < 2; ++run) {
      dy.poison();
      aqlm_gemv(plan, dx.get(), dy.get(), c.n, c.act, ws, nullptr, options);
      check(cudaDeviceSynchronize(), "running the AQLM gemv test");
      std::vector<uint16_t> y(ref.size());
      dy.download(y.data());
      if (run == 0) {
        // Output rounding: half an ulp, 2^-11 (fp16) or 2^-8 (bf16) relative, on top of the
        // fp32 accumulation bound; 2^-24 covers fp16 subnormal spacing.
        const double rel = c.act == DType::BF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        for (size_t i = 0; i < y.size(); ++i) {
          const float v = from_act(y[i], c.act);
          ASSERT_TRUE(std::isfinite(v)) << "output " << i << " (token " << i / c.out << ", row " << i % c.out
                                        << ") not written";
          const double bound = test::fp32_sum_bound(layer.view(), abs_sum[i]) * (1 + rel) +
                               rel * std::abs(double(ref[i])) + std::ldexp(1.0, -24);
          ASSERT_NEAR(v, ref[i], bound) << "token " << i / c.out << " row " << i % c.out;
        }
        first = y;
      } else {
        ASSERT_EQ(std::memcmp(first.data(), y.data(), y.size() * 2), 0) << "two runs differ: a race";
      }
    }
  }
}

const GemvCase kCases[] = {
    // 2x8g8: lookup tables; odd rows and 72 groups (9 slabs), T = 1, 2, 4 (3 padded), passes
    {1000, 576, 2, 8, 1, DType::F16},
    {1000, 576, 2, 8, 2, DType::BF16},
    {1000, 576, 2, 8, 3, DType::F16},
    {1000, 576, 2, 8, 5, DType::BF16},
    {1000, 576, 2, 8, 8, DType::F16},
    {4096, 4096, 2, 8, 1, DType::F16},   // 64 slabs, 4096 rows: several tiles and sets per block
    {1024, 4096, 2, 8, 4, DType::BF16},
    {300, 11008, 2, 8, 2, DType::F16},   // 1376 groups: 172 slabs
    {5000, 1024, 2, 8, 1, DType::F16},   // rows past several 2048-row tiles
    {37, 8, 2, 8, 1, DType::F16},        // a single group
    {70, 128, 2, 6, 1, DType::F16},      // B = 6: codes masked, smaller tables
    {60, 64, 2, 8, 2, DType::F16, 2},    // 8-bit codes stored as int16
    // 1x8g8 and general Kx8
    {1000, 576, 1, 8, 1, DType::F16},
    {300, 4096, 1, 8, 8, DType::BF16},
    {90, 72, 1, 8, 1, DType::F16},       // 9 groups: one partial slab
    {100, 200, 3, 8, 2, DType::F16},     // 3x8: 5 groups per slab
    {64, 1024, 4, 8, 5, DType::BF16},    // 4x8
    // 1x16g8: codeword gathers (the 1 MiB codebook through L2)
    {1000, 576, 1, 16, 1, DType::F16},
    {1000, 576, 1, 16, 4, DType::BF16},
    {1000, 576, 1, 16, 8, DType::F16},
    {2048, 4096, 1, 16, 1, DType::BF16},
    {512, 64, 1, 16, 2, DType::F16},     // one slab: the gather kernel writes y itself
    // 2x16g8, 2x12g8
    {200, 576, 2, 16, 1, DType::F16},
    {200, 576, 2, 16, 8, DType::BF16},
    {100, 256, 2, 12, 2, DType::F16},
    // more than 8 tokens: passes
    {128, 256, 2, 8, 19, DType::F16},
    {128, 256, 1, 16, 11, DType::BF16},
};

INSTANTIATE_TEST_SUITE_P(Layers, AqlmGemvCuda, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<GemvCase>& info) { return case_name(info.param); });

// Dequantization must equal the CPU's, bit for bit: the same fp32 sum rounded once (slab
// layout for B <= 8, codes as stored for B > 8).
TEST(AqlmDequantizeCuda, MatchesCpuBitForBit) {
  AQLM_REQUIRE_GPU();
  struct Config {
    int64_t out, in;
    int M, B;
  };
  for (const Config cfg : {Config{300, 576, 2, 8}, Config{77, 4096, 1, 16}, Config{50, 72, 3, 8}, Config{9, 64, 2, 12},
                           Config{33, 200, 1, 8}}) {
    for (DType act : {DType::F16, DType::BF16}) {
      SCOPED_TRACE(str(cfg.M, "x", cfg.B, " ", cfg.out, "x", cfg.in, " ", name_of(act)));
      const test::AqlmLayer layer = test::random_layer(cfg.out, cfg.in, cfg.M, cfg.B, 8, uint64_t(cfg.in + cfg.B));
      const AqlmCudaPlan plan = prepare(layer.view(), Memory::Host, "test layer");
      DeviceBuffer dw(size_t(cfg.out * cfg.in) * 2);
      dw.poison();
      aqlm_dequantize(plan, dw.get(), act);
      check(cudaDeviceSynchronize(), "running the AQLM dequantize test");
      std::vector<uint16_t> got(size_t(cfg.out * cfg.in));
      dw.download(got.data());
      std::vector<float> w32(got.size());
      cpu::aqlm_dequantize(layer.view(), 0, cfg.out, w32.data());
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], to_act(w32[i], act)) << "weight " << i;
    }
  }
}

// A layer prepared from device memory (codes downloaded, re-laid out, uploaded) computes
// exactly what the one prepared from host memory does.
TEST(AqlmPrepareCuda, DeviceAndHostViewsGiveTheSameLayer) {
  AQLM_REQUIRE_GPU();
  for (const int B : {8, 16}) {
    const test::AqlmLayer layer = test::random_layer(300, 576, B == 8 ? 2 : 1, B, 8, 11);
    DeviceLayer dev(layer);
    const AqlmCudaPlan from_host = prepare(layer.view(), Memory::Host, "host layer");
    const AqlmCudaPlan from_device = prepare(dev.view, Memory::Device, "device layer");
    EXPECT_EQ(from_host.device_bytes(), prepared_bytes(layer.view()));
    EXPECT_EQ(from_host.slabs(), B == 8);
    std::vector<uint16_t> x_bits;
    std::vector<float> x;
    random_activations(2 * 576, DType::F16, 12, x_bits, x);
    DeviceBuffer dx(x_bits.size() * 2), dy1(2 * 300 * 2), dy2(2 * 300 * 2);
    dx.upload(x_bits.data());
    AqlmGemvWorkspace ws;
    aqlm_gemv(from_host, dx.get(), dy1.get(), 2, DType::F16, ws);
    aqlm_gemv(from_device, dx.get(), dy2.get(), 2, DType::F16, ws);
    std::vector<uint16_t> y1(600), y2(600);
    dy1.download(y1.data());
    dy2.download(y2.data());
    EXPECT_EQ(y1, y2);
  }
}

// Replayed from a CUDA graph (as the engine's decode step runs it, the reduction a
// programmatic dependent launch inside the graph), the results equal an eager call's.
TEST(AqlmGemvCudaGraph, ReplayEqualsEagerCall) {
  AQLM_REQUIRE_GPU();
  for (const int B : {8, 16}) {
    SCOPED_TRACE(str("B = ", B));
    const test::AqlmLayer layer = test::random_layer(2000, 2048, B == 8 ? 2 : 1, B, 8, 21);
    const AqlmCudaPlan plan = prepare(layer.view(), Memory::Host, "graph layer");
    std::vector<uint16_t> x_bits;
    std::vector<float> x;
    random_activations(2048, DType::F16, 22, x_bits, x);
    DeviceBuffer dx(x_bits.size() * 2), dy(2000 * 2);
    dx.upload(x_bits.data());
    AqlmGemvWorkspace ws;
    cudaStream_t stream = nullptr;
    check(cudaStreamCreate(&stream), "creating a stream");
    aqlm_gemv(plan, dx.get(), dy.get(), 1, DType::F16, ws, stream);  // eager: sizes the workspace
    check(cudaStreamSynchronize(stream), "running the eager call");
    std::vector<uint16_t> eager(2000), replayed(2000);
    dy.download(eager.data());
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "beginning a capture");
    aqlm_gemv(plan, dx.get(), dy.get(), 1, DType::F16, ws, stream);
    aqlm_gemv(plan, dx.get(), dy.get(), 1, DType::F16, ws, stream);  // twice: back-to-back calls share the workspace
    check(cudaStreamEndCapture(stream, &graph), "ending the capture");
    check(cudaGraphInstantiate(&exec, graph, 0), "instantiating the graph");
    dy.poison();
    check(cudaGraphLaunch(exec, stream), "launching the graph");
    check(cudaStreamSynchronize(stream), "replaying the graph");
    dy.download(replayed.data());
    EXPECT_EQ(eager, replayed);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  }
}

// ---------------------------------------------------------------------------------------
// Bad input. These fail before any CUDA call, so they run without a GPU too.

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

AqlmView fake_view(int M, int B, int g) {
  AqlmView w;
  w.codes = reinterpret_cast<const void*>(uintptr_t(0x10000));
  w.codebooks = reinterpret_cast<const uint16_t*>(uintptr_t(0x20000));
  w.scales = reinterpret_cast<const uint16_t*>(uintptr_t(0x30000));
  w.out = 64;
  w.in = 128;
  w.num_codebooks = M;
  w.nbits = B;
  w.group_size = g;
  w.code_bytes = B <= 8 ? 1 : 2;
  return w;
}

TEST(AqlmGemvCudaErrors, UnsupportedLayersAreRejectedBeforeAnyCudaCall) {
  auto prep = [&](const AqlmView& w) { return error_of([&] { prepare(w, Memory::Host, "layers.0.q_proj"); }); };
  EXPECT_EQ(prep(fake_view(2, 8, 16)), "layers.0.q_proj: the CUDA AQLM kernels need in_group_size 8, not 16");
  EXPECT_EQ(prep(fake_view(5, 8, 8)), "layers.0.q_proj: the CUDA AQLM kernels take at most 4 codebooks of 8 bits, not 5");
  EXPECT_EQ(prep(fake_view(3, 16, 8)), "layers.0.q_proj: the CUDA AQLM kernels take at most 2 codebooks of 16 bits, not 3");
  AqlmView w = fake_view(2, 8, 8);
  w.nbits = 12;
  EXPECT_EQ(prep(w), "layers.0.q_proj: 12-bit codes do not fit the 8-bit integers that hold them");
  w = fake_view(2, 8, 8);
  w.codes = nullptr;
  EXPECT_EQ(prep(w).rfind("layers.0.q_proj: ", 0), 0u) << prep(w);
}

TEST(AqlmGemvCudaErrors, UnpreparedLayersAreRejected) {
  AqlmGemvWorkspace ws;
  const AqlmCudaPlan empty;
  const void* x = reinterpret_cast<const void*>(uintptr_t(0x40000));
  void* y = reinterpret_cast<void*>(uintptr_t(0x50000));
  EXPECT_EQ(error_of([&] { aqlm_gemv(empty, x, y, 1, DType::F16, ws); }), "AQLM gemv: the layer was not prepared");
  EXPECT_EQ(error_of([&] { aqlm_dequantize(empty, y, DType::F16); }), "AQLM dequantize: the layer was not prepared");
}

TEST(AqlmGemvCudaErrors, BadCallsAreRejected) {
  AQLM_REQUIRE_GPU();
  const test::AqlmLayer layer = test::random_layer(64, 128, 2, 8, 8, 1);
  const AqlmCudaPlan plan = prepare(layer.view(), Memory::Host, "layer");
  AqlmGemvWorkspace ws;
  DeviceBuffer dx(4 * 128 * 2), dy(4 * 64 * 2);
  auto gemv = [&](int n, const void* x, const AqlmGemvOptions& o = {}) {
    return error_of([&] { aqlm_gemv(plan, x, dy.get(), n, DType::F16, ws, nullptr, o); });
  };
  EXPECT_EQ(gemv(0, dx.get()), "AQLM gemv: token count is 0 (expected at least 1)");
  EXPECT_EQ(gemv(1, static_cast<const uint8_t*>(dx.get()) + 2), "AQLM gemv: the input must start at a 16-byte aligned address");
  EXPECT_EQ(gemv(1, nullptr), "AQLM gemv: missing input or output buffer");
  EXPECT_EQ(gemv(1, dx.get(), AqlmGemvOptions{3, true}), "AQLM gemv: 3 slabs per set (expected 1, 2, 4 or 8)");
  EXPECT_EQ(gemv(4, dx.get(), AqlmGemvOptions{4, true}), "AQLM gemv: 4 slabs per set need more than 128 KB of tables for 4 tokens");
  EXPECT_EQ(error_of([&] { aqlm_dequantize(plan, static_cast<uint8_t*>(dy.get()) + 4, DType::F16); }),
            "AQLM dequantize: the output must be a 16-byte aligned device buffer");
}

TEST(AqlmGemvCudaErrors, NoGpuIsReportedClearly) {
  if (device_count() > 0) GTEST_SKIP() << "a GPU is present";
  AqlmGemvWorkspace ws;
  const std::string e = error_of([&] { ws.reserve(1024, 16); });
  EXPECT_EQ(e.rfind("no CUDA GPU: ", 0), 0u) << e;
}

TEST(AqlmGemvCudaErrors, OutOfMemoryIsReportedClearly) {
  AQLM_REQUIRE_GPU();
  AqlmGemvWorkspace ws;
  const std::string e = error_of([&] { ws.reserve(size_t(1) << 48, 16); });  // 1 PiB of floats
  EXPECT_EQ(e.rfind("CUDA out of memory while allocating 1073741824 MiB for the AQLM gemv workspace: ", 0), 0u) << e;
  // The workspace still works afterwards.
  EXPECT_NO_THROW(ws.reserve(1024, 16));
}

}  // namespace
}  // namespace aqlm::cuda
