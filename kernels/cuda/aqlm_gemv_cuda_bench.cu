// AQLM CUDA kernels against fp16 cuBLAS on Llama-2 shapes, per docs METHOD: CUDA events
// around each call, warm-up first, the median of >= 200 calls, weights rotated over enough
// copies (> 3x L2) that nothing sits in L2 between calls, cuBLAS measured in the same run.
// Each is timed twice: calls launched one by one with events around each ("call"), and
// replays of a CUDA graph of 20 calls ("graph", per call), as the engine's decode step runs
// them. Also: the device copy bandwidth (bytes read + written), the bandwidth each AQLM kernel
// achieves over its code bytes, batch 2/4/8 over batch 1, a correctness check of every timed
// kernel against cuBLAS on the dequantized weights, and dequantization throughput.
//
// Usage: bench_kernels_cuda [--iters N] [--quick] [--only CONFIG] [--shape OUTxIN] [--batch N]
//                           [--sweep] [--no-dependent-launch]
// --sweep also times every slab-per-set choice of the lookup-table kernel (column "k").
// (prints a table; one line per result starting "row" as well, for scripts)
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "kernels/cuda/aqlm_gemv_cuda.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm::cuda {
namespace {

int g_iters = 200;
std::string g_only_config, g_only_shape;  // --only NAME, --shape OUTxIN: one config / shape
int g_only_batch = 0;                     // --batch N
bool g_sweep = false;                     // --sweep
bool g_dependent_launch = true;           // --no-dependent-launch
constexpr int kWarmup = 20;
constexpr int kGraphCalls = 20;  // calls captured per graph
constexpr double kRotateBytes = 3.0 * 50e6 + 64e6;  // > 3x the H100's 50 MB L2

void cublas_check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS ", what, " failed with status ", int(s));
}

struct Buffer {
  explicit Buffer(size_t bytes) : p(device_alloc(bytes, "benchmark data")), bytes(bytes) {}
  ~Buffer() { device_free(p); }
  void* p;
  size_t bytes;
};

__global__ void fill_random_bytes(uint32_t* p, size_t words, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < words; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    p[i] = uint32_t(z ^ (z >> 31));
  }
}

__global__ void fill_random_half(__half* p, size_t n, uint64_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + i * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    const float u = float((z >> 40) & 0xffffff) / float(1 << 24);  // [0, 1)
    p[i] = __float2half((u * 2.0f - 1.0f) * scale);
  }
}

void random_bytes(void* p, size_t bytes, uint64_t seed) {
  fill_random_bytes<<<1024, 256>>>(static_cast<uint32_t*>(p), bytes / 4, seed);
  check_launch("random fill");
}
void random_half(void* p, size_t n, uint64_t seed, float scale) {
  fill_random_half<<<1024, 256>>>(static_cast<__half*>(p), n, seed, scale);
  check_launch("random fill");
}

// Median and mean of `iters` timed calls; call(i) launches one, rotating by i.
struct Timing {
  double median_us = 0, mean_us = 0;
};
Timing time_calls(const std::function<void(int)>& call) {
  for (int i = 0; i < kWarmup; ++i) call(i);
  std::vector<cudaEvent_t> ev(size_t(2 * g_iters));
  for (auto& e : ev) check(cudaEventCreate(&e), "creating timing events");
  for (int i = 0; i < g_iters; ++i) {
    check(cudaEventRecord(ev[size_t(2 * i)]), "recording an event");
    call(i);
    check(cudaEventRecord(ev[size_t(2 * i + 1)]), "recording an event");
  }
  check(cudaDeviceSynchronize(), "running the benchmark");
  std::vector<double> us(static_cast<size_t>(g_iters));
  for (int i = 0; i < g_iters; ++i) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, ev[size_t(2 * i)], ev[size_t(2 * i + 1)]), "reading an event");
    us[size_t(i)] = ms * 1e3;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  Timing t;
  for (double v : us) t.mean_us += v / double(g_iters);
  std::nth_element(us.begin(), us.begin() + g_iters / 2, us.end());
  t.median_us = us[size_t(g_iters / 2)];
  return t;
}

// Per-call median over replays of a graph holding kGraphCalls calls (call(i) rotating by i);
// NaN (and the reason printed once) when the calls cannot be captured.
double time_graph_or_throw(const std::function<void(int, cudaStream_t)>& call);
double time_graph(const std::function<void(int, cudaStream_t)>& call) {
  static bool reported = false;
  try {
    return time_graph_or_throw(call);
  } catch (const Error& e) {
    if (!reported) std::printf("graph timing failed: %s\n", e.what());
    reported = true;
    cudaGetLastError();
    return NAN;
  }
}

double time_graph_or_throw(const std::function<void(int, cudaStream_t)>& call) {
  cudaStream_t stream = nullptr;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating a stream");
  for (int i = 0; i < kWarmup; ++i) call(i, stream);  // eager: workspaces, kernel attributes
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "beginning a capture");
  try {
    for (int i = 0; i < kGraphCalls; ++i) call(i, stream);
  } catch (...) {  // leave capture mode so this thread can go on
    cudaStreamEndCapture(stream, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    throw;
  }
  check(cudaStreamEndCapture(stream, &graph), "ending a capture");
  check(cudaGraphInstantiate(&exec, graph, 0), "instantiating a graph");
  const int replays = std::max(10, g_iters / kGraphCalls);
  std::vector<cudaEvent_t> ev(size_t(2 * replays));
  for (auto& e : ev) check(cudaEventCreate(&e), "creating timing events");
  for (int i = 0; i < 3; ++i) check(cudaGraphLaunch(exec, stream), "replaying a graph");
  for (int i = 0; i < replays; ++i) {
    check(cudaEventRecord(ev[size_t(2 * i)], stream), "recording an event");
    check(cudaGraphLaunch(exec, stream), "replaying a graph");
    check(cudaEventRecord(ev[size_t(2 * i + 1)], stream), "recording an event");
  }
  check(cudaStreamSynchronize(stream), "replaying graphs");
  std::vector<double> us(static_cast<size_t>(replays));
  for (int i = 0; i < replays; ++i) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, ev[size_t(2 * i)], ev[size_t(2 * i + 1)]), "reading an event");
    us[size_t(i)] = ms * 1e3 / kGraphCalls;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  std::nth_element(us.begin(), us.begin() + replays / 2, us.end());
  return us[size_t(replays / 2)];
}

double copy_bandwidth_gbs() {
  const size_t bytes = size_t(1) << 30;
  Buffer a(bytes), b(bytes);
  random_bytes(a.p, bytes, 1);
  const Timing t = time_calls([&](int i) {
    check(cudaMemcpyAsync(i % 2 ? a.p : b.p, i % 2 ? b.p : a.p, bytes, cudaMemcpyDeviceToDevice), "copying");
  });
  return 2.0 * double(bytes) / (t.median_us * 1e-6) / 1e9;
}

struct Config {
  const char* name;
  int M, B;
};

struct Shape {
  int64_t out, in;
};

// One AQLM layer: random codes, codebooks and scales drawn on the device, then prepared for
// the kernels (the raw copies are freed).
struct DeviceLayer {
  DeviceLayer(int64_t out, int64_t in, int M, int B, uint64_t seed) {
    Buffer codes(size_t(out * (in / 8) * M) * (B <= 8 ? 1 : 2)), codebooks(size_t(M) * (size_t(1) << B) * 16),
        scales(size_t(out) * 2);
    random_bytes(codes.p, codes.bytes, seed);
    random_half(codebooks.p, codebooks.bytes / 2, seed + 1, 1.7f / std::sqrt(float(M)));  // ~unit variance
    random_half(scales.p, size_t(out), seed + 2, 1.0f / std::sqrt(float(in)));
    check(cudaDeviceSynchronize(), "drawing a benchmark layer");
    AqlmView view;
    view.codes = codes.p;
    view.codebooks = static_cast<const uint16_t*>(codebooks.p);
    view.scales = static_cast<const uint16_t*>(scales.p);
    view.out = out;
    view.in = in;
    view.num_codebooks = M;
    view.nbits = B;
    view.group_size = 8;
    view.code_bytes = B <= 8 ? 1 : 2;
    plan = prepare(view, Memory::Device, "benchmark layer");
  }
  AqlmCudaPlan plan;
};

double rel_error(const std::vector<uint16_t>& y, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double v = f16_to_f32(y[i]);
    if (!std::isfinite(v)) return INFINITY;
    num += (v - ref[i]) * (v - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

void run() {
  const DeviceProperties& props = device_properties();
  std::printf("device: %s, %d SMs, sm_%d%d; timed calls per point: %d (median)\n", props.name.c_str(), props.sm_count,
              props.major, props.minor, g_iters);
  const double copy_gbs = copy_bandwidth_gbs();
  std::printf("device copy bandwidth (read + write): %.0f GB/s\n\n", copy_gbs);

  cublasHandle_t handle;
  cublas_check(cublasCreate(&handle), "handle creation");
  const std::vector<Shape> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {8192, 8192}, {28672, 8192}, {8192, 28672}};
  const std::vector<Config> configs = {{"2x8g8", 2, 8}, {"1x16g8", 1, 16}, {"1x8g8", 1, 8}};
  const int batches[] = {1, 2, 4, 8};
  AqlmGemvWorkspace ws;
  std::printf("%-8s %-12s %5s %2s %9s %9s %9s %9s %8s %8s %9s %6s %9s %9s\n", "config", "shape", "batch", "k", "aqlm_us",
              "graph_us", "cublas_us", "cub_g_us", "speedup", "graph_x", "code_GB/s", "%copy", "vs_batch1", "rel_err");
  for (const Shape s : shapes) {
    if (!g_only_shape.empty() && g_only_shape != std::to_string(s.out) + "x" + std::to_string(s.in)) continue;
    // fp16 cuBLAS on rotated dense copies.
    const size_t dense_bytes = size_t(s.out * s.in) * 2;
    const int dense_copies = std::max(2, int(std::ceil(kRotateBytes / double(dense_bytes))));
    std::vector<std::unique_ptr<Buffer>> dense;
    for (int c = 0; c < dense_copies; ++c) {
      dense.push_back(std::make_unique<Buffer>(dense_bytes));
      random_half(dense.back()->p, size_t(s.out * s.in), 100 + c, 0.02f);
    }
    Buffer x(size_t(8 * s.in) * 2), y(size_t(8 * s.out) * 2), yf(size_t(8 * s.out) * 4);
    random_half(x.p, size_t(8 * s.in), 7, 1.0f);
    double cublas_us[9] = {}, cublas_graph_us[9] = {};
    for (int n : batches) {
      if (g_only_batch && n != g_only_batch) continue;
      const float alpha = 1.0f, beta = 0.0f;
      auto gemm = [&](int i, cudaStream_t stream) {
        cublas_check(cublasSetStream(handle, stream), "stream");
        cublas_check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(s.out), n, int(s.in), &alpha,
                                  dense[size_t(i % dense_copies)]->p, CUDA_R_16F, int(s.in), x.p, CUDA_R_16F,
                                  int(s.in), &beta, y.p, CUDA_R_16F, int(s.out), CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT),
                     "fp16 GEMM");
      };
      cublas_us[n] = time_calls([&](int i) { gemm(i, nullptr); }).median_us;
      cublas_graph_us[n] = time_graph(gemm);
      cublas_check(cublasSetStream(handle, nullptr), "stream");
    }
    dense.clear();
    for (const Config& cfg : configs) {
      if (!g_only_config.empty() && g_only_config != cfg.name) continue;
      const size_t code_bytes = size_t(s.out * (s.in / 8) * cfg.M) * (cfg.B <= 8 ? 1 : 2);
      std::vector<std::unique_ptr<DeviceLayer>> layers;
      layers.push_back(std::make_unique<DeviceLayer>(s.out, s.in, cfg.M, cfg.B, 1000));
      const int copies = std::max(2, int(std::ceil(kRotateBytes / double(layers[0]->plan.device_bytes()))));
      for (int c = 1; c < copies; ++c) layers.push_back(std::make_unique<DeviceLayer>(s.out, s.in, cfg.M, cfg.B, 1000 + 17 * c));
      // Reference: cuBLAS on the dequantized first copy, fp32 output.
      Buffer wdq(size_t(s.out * s.in) * 2);
      aqlm_dequantize(layers[0]->plan, wdq.p, DType::F16);
      double batch1_us = 0;
      for (int n : batches) {
        if (g_only_batch && n != g_only_batch) continue;
        const float alpha = 1.0f, beta = 0.0f;
        cublas_check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(s.out), n, int(s.in), &alpha, wdq.p,
                                  CUDA_R_16F, int(s.in), x.p, CUDA_R_16F, int(s.in), &beta, yf.p, CUDA_R_32F,
                                  int(s.out), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "reference GEMM");
        std::vector<int> ks{0};
        const int T = n == 1 ? 1 : n == 2 ? 2 : 4;  // lookup-table passes of <= 4 tokens
        if (g_sweep && cfg.B <= 8)
          for (int k : {1, 2, 4, 8})
            if (k * T <= 8) ks.push_back(k);
        for (int k : ks) {
          const AqlmGemvOptions options{k, g_dependent_launch};
          check(cudaMemset(y.p, 0xff, y.bytes), "poisoning");
          aqlm_gemv(layers[0]->plan, x.p, y.p, n, DType::F16, ws, nullptr, options);
          check(cudaDeviceSynchronize(), "checking the AQLM gemv");
          std::vector<uint16_t> got(size_t(n * s.out));
          std::vector<float> ref(got.size());
          check(cudaMemcpy(got.data(), y.p, got.size() * 2, cudaMemcpyDeviceToHost), "downloading");
          check(cudaMemcpy(ref.data(), yf.p, ref.size() * 4, cudaMemcpyDeviceToHost), "downloading");
          const double err = rel_error(got, ref);
          const Timing t = time_calls([&](int i) {
            aqlm_gemv(layers[size_t(i % copies)]->plan, x.p, y.p, n, DType::F16, ws, nullptr, options);
          });
          AqlmGemvWorkspace graph_ws;
          const double graph_us = time_graph([&](int i, cudaStream_t stream) {
            aqlm_gemv(layers[size_t(i % copies)]->plan, x.p, y.p, n, DType::F16, graph_ws, stream, options);
          });
          if (k == 0 && (n == 1 || batch1_us == 0)) batch1_us = t.median_us;
          const double gbs = double(code_bytes) / (t.median_us * 1e-6) / 1e9;
          char shape[32];
          std::snprintf(shape, sizeof shape, "%lldx%lld", (long long)s.out, (long long)s.in);
          std::printf("%-8s %-12s %5d %2d %9.2f %9.2f %9.2f %9.2f %7.2fx %7.2fx %9.0f %5.0f%% %8.2fx %9.1e%s\n", cfg.name,
                      shape, n, k, t.median_us, graph_us, cublas_us[n], cublas_graph_us[n], cublas_us[n] / t.median_us,
                      cublas_graph_us[n] / graph_us, gbs, 100.0 * gbs / copy_gbs, t.median_us / batch1_us, err,
                      err > 2e-3 ? "  WRONG" : "");
          std::printf("row %s %s %d %d %.3f %.3f %.3f %.3f %.3f %.1f %.3e\n", cfg.name, shape, n, k, t.median_us,
                      t.mean_us, graph_us, cublas_us[n], cublas_graph_us[n], gbs, err);
          std::fflush(stdout);
        }
      }
    }
  }
  if (!g_only_config.empty() || !g_only_shape.empty()) return cublasDestroy(handle), void();
  // Dequantization (the prefill path writes fp16 W, then a cuBLAS GEMM).
  std::printf("\n%-8s %-12s %10s %12s\n", "dequant", "shape", "us", "write_GB/s");
  for (const Config& cfg : {configs[0], configs[1]}) {
    for (const Shape s : {shapes[0], shapes[4]}) {
      DeviceLayer layer(s.out, s.in, cfg.M, cfg.B, 5);
      Buffer w(size_t(s.out * s.in) * 2);
      const Timing t = time_calls([&](int) { aqlm_dequantize(layer.plan, w.p, DType::F16); });
      std::printf("%-8s %lldx%-7lld %10.2f %12.0f\n", cfg.name, (long long)s.out, (long long)s.in, t.median_us,
                  double(w.bytes) / (t.median_us * 1e-6) / 1e9);
    }
  }
  cublasDestroy(handle);
}

}  // namespace
}  // namespace aqlm::cuda

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) aqlm::cuda::g_iters = std::max(10, std::atoi(argv[++i]));
    if (!std::strcmp(argv[i], "--quick")) aqlm::cuda::g_iters = 50;
    if (!std::strcmp(argv[i], "--only") && i + 1 < argc) aqlm::cuda::g_only_config = argv[++i];
    if (!std::strcmp(argv[i], "--shape") && i + 1 < argc) aqlm::cuda::g_only_shape = argv[++i];
    if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) aqlm::cuda::g_only_batch = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--sweep")) aqlm::cuda::g_sweep = true;
    if (!std::strcmp(argv[i], "--no-dependent-launch")) aqlm::cuda::g_dependent_launch = false;
  }
  if (aqlm::cuda::device_count() == 0) {
    std::fprintf(stderr, "%s\n", aqlm::cuda::no_device_reason().c_str());
    return 1;
  }
  try {
    aqlm::cuda::run();
  } catch (const aqlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
