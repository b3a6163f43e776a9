// bench_cuda_engine: decode and prefill speed of the CUDA engine on a Llama-2-7B-shaped model
// with random weights built in memory (32 layers, hidden 4096, FFN 11008, 32 heads, vocab
// 32000): every linear fp16, then AQLM 2x8g8, then 1x16g8 (embeddings and LM head fp16, as
// AQLM models keep them). Per configuration: tokens/s of single-token decode (CUDA graphs,
// logits copied out; device argmax; eager launches), prefill tokens/s, GPU memory in use,
// and the decode floor (bytes each step must read over the measured copy bandwidth).
//
// Usage: bench_cuda_engine [--configs fp16,2x8g8,1x16g8] [--prompt 128] [--decode 128] [--layers 32]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/model/model.h"
#include "core/runtime/cuda_engine.h"
#include "core/runtime/engine.h"
#include "kernels/cuda/cuda_check.h"

namespace aqlm {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchConfig {
  std::string name;  // "fp16", "2x8g8", "1x16g8"
  int M = 0, B = 0;  // AQLM codebooks and bits (0: dense fp16)
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// fp16 values uniform in [-a, a] (std a / sqrt(3)): never zero-filled, cheap to make.
std::shared_ptr<std::vector<uint16_t>> random_f16(size_t n, float a, uint64_t seed) {
  auto v = std::make_shared<std::vector<uint16_t>>(n);
  for (size_t i = 0; i < n; ++i) {
    const float u = float(splitmix(seed) >> 40) * (1.0f / float(1 << 24));
    (*v)[i] = f32_to_f16((2.0f * u - 1.0f) * a);
  }
  return v;
}

std::shared_ptr<std::vector<uint8_t>> random_bytes(size_t n, uint64_t seed) {
  auto v = std::make_shared<std::vector<uint8_t>>(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t r = splitmix(seed);
    std::memcpy(v->data() + i, &r, 8);
  }
  for (; i < n; ++i) (*v)[i] = uint8_t(splitmix(seed));
  return v;
}

// A Llama-2-7B-shaped model whose layers all view the same host buffers per shape (the GPU
// still gets its own copy of every layer, so each decode step reads all of them).
std::unique_ptr<Model> make_model(const BenchConfig& bc, int layers) {
  auto m = std::make_unique<Model>();
  ModelConfig& c = m->config;
  c.arch = Architecture::Llama;
  c.hidden_size = 4096;
  c.intermediate_size = 11008;
  c.num_layers = layers;
  c.num_heads = c.num_kv_heads = 32;
  c.head_dim = 128;
  c.vocab_size = 32000;
  c.max_position_embeddings = 4096;
  c.torch_dtype = "float16";
  c.eos_token_ids = {2};
  if (bc.M > 0) c.aqlm = AqlmQuantConfig{bc.M, bc.B, 8, 1, {}};
  WeightStore& w = m->weights;
  const int64_t h = c.hidden_size, f = c.intermediate_size, V = c.vocab_size;
  auto add = [&](const std::string& name, DType t, std::vector<int64_t> shape, const std::shared_ptr<const void>& owner,
                 const void* data) { w.add_view(name, TensorView{t, std::move(shape), data}, owner); };
  auto embed = random_f16(size_t(V * h), 0.5f, 1), head = random_f16(size_t(V * h), 0.035f, 2);
  add("model.embed_tokens.weight", DType::F16, {V, h}, embed, embed->data());
  add("lm_head.weight", DType::F16, {V, h}, head, head->data());
  const std::vector<float> ones(size_t(h), 1.0f);
  w.add_f32("model.norm.weight", {h}, ones);

  struct Shape {
    int64_t out, in;
  };
  const Shape square{h, h}, wide{f, h}, narrow{h, f};
  // Per shape: a dense fp16 matrix (std 0.02) or AQLM codes, codebooks and scales.
  struct Source {
    std::shared_ptr<std::vector<uint16_t>> dense, codebooks, scales;
    std::shared_ptr<std::vector<uint8_t>> codes;
  };
  auto make_source = [&](Shape s, uint64_t seed) {
    Source src;
    if (bc.M == 0) {
      src.dense = random_f16(size_t(s.out * s.in), 0.035f, seed);
    } else {
      const size_t code_bytes = bc.B <= 8 ? 1 : 2;
      src.codes = random_bytes(size_t(s.out * (s.in / 8) * bc.M) * code_bytes, seed);
      // Weights = scale * sum of M codewords: std ~0.02 for scale 1.
      src.codebooks = random_f16(size_t(bc.M) * (size_t(1) << bc.B) * 8, 0.035f / std::sqrt(float(bc.M)), seed + 1);
      src.scales = random_f16(size_t(s.out), 1.0f, seed + 2);
      for (uint16_t& x : *src.scales) x = f32_to_f16(0.5f + std::fabs(f16_to_f32(x)));
    }
    return src;
  };
  const Source sq = make_source(square, 10), wd = make_source(wide, 20), nr = make_source(narrow, 30);
  auto add_linear = [&](const std::string& prefix, Shape s, const Source& src) {
    if (bc.M == 0) {
      add(prefix + ".weight", DType::F16, {s.out, s.in}, src.dense, src.dense->data());
      return;
    }
    add(prefix + ".codes", bc.B <= 8 ? DType::I8 : DType::I16, {s.out, s.in / 8, bc.M}, src.codes, src.codes->data());
    add(prefix + ".codebooks", DType::F16, {bc.M, int64_t(1) << bc.B, 1, 8}, src.codebooks, src.codebooks->data());
    add(prefix + ".scales", DType::F16, {s.out, 1, 1, 1}, src.scales, src.scales->data());
  };
  for (int l = 0; l < layers; ++l) {
    const std::string p = layer_prefix(l);
    w.add_f32(p + "input_layernorm.weight", {h}, ones);
    w.add_f32(p + "post_attention_layernorm.weight", {h}, ones);
    for (const char* n : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      add_linear(p + n, square, sq);
    add_linear(p + "mlp.gate_proj", wide, wd);
    add_linear(p + "mlp.up_proj", wide, wd);
    add_linear(p + "mlp.down_proj", narrow, nr);
  }
  return m;
}

double seconds(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

size_t gpu_used() {
  size_t free_b = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free_b, &total), "reading GPU memory");
  return total - free_b;
}

double copy_gbps() {
  const size_t bytes = size_t(1) << 30;
  void* a = cuda::device_alloc(bytes, "the copy benchmark");
  void* b = cuda::device_alloc(bytes, "the copy benchmark");
  cuda::check(cudaMemset(a, 1, bytes), "copy benchmark");
  std::vector<double> t;
  for (int i = 0; i < 12; ++i) {
    cuda::check(cudaDeviceSynchronize(), "copy benchmark");
    const auto s = Clock::now();
    cuda::check(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "copy benchmark");
    cuda::check(cudaDeviceSynchronize(), "copy benchmark");
    if (i >= 2) t.push_back(seconds(s));
  }
  cuda::device_free(a);
  cuda::device_free(b);
  std::sort(t.begin(), t.end());
  return 2.0 * double(bytes) / t[t.size() / 2] / 1e9;
}

struct Result {
  std::string name;
  double load_s = 0, decode_tps = 0, argmax_tps = 0, eager_tps = 0, prefill_tps = 0, used_gb = 0, estimate_gb = 0,
         step_bytes = 0;
  bool finite = true;
};

// Single-token steps from position `prompt` on; tokens/s over `steps` after 3 warm-up steps.
double decode_rate(Engine& e, int prompt, int steps, bool argmax, bool& finite) {
  const std::vector<int32_t> ids(size_t(prompt), 7);
  std::vector<float> logits(size_t(e.config().vocab_size));
  e.rewind(0);
  e.forward(ids, nullptr);
  int32_t token = 11;
  for (int i = 0; i < 3; ++i) e.forward(std::span<const int32_t>(&token, 1), logits.data());
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) {
    if (argmax) {
      token = e.forward_argmax(std::span<const int32_t>(&token, 1));
    } else {
      e.forward(std::span<const int32_t>(&token, 1), logits.data());
      token = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
  }
  const double s = seconds(start);
  if (!argmax)
    for (float x : logits) finite &= std::isfinite(x);
  return steps / s;
}

Result run_config(const BenchConfig& bc, int layers, int prompt, int steps) {
  Result r;
  r.name = bc.name;
  const auto model = make_model(bc, layers);
  EngineOptions o;
  o.device = Device::Cuda;
  o.context_length = 4096;
  r.estimate_gb = double(cuda_engine_memory_bytes(*model, o)) / 1e9;
  // Bytes one decode step must read: every projection's weights (as stored on the GPU), the
  // LM head, and the KV cache up to the mid-point of the timed steps.
  for (const std::string& n : model->weights.names())
    if (n != "model.embed_tokens.weight") r.step_bytes += double(model->weights.get(n).nbytes());
  r.step_bytes += 2.0 * layers * 4096 * 2 * (prompt + 3 + steps / 2);
  const size_t before = gpu_used();
  {
    const auto t = Clock::now();
    auto e = create_cuda_engine(*model, o);
    r.load_s = seconds(t);
    // Prefill: a 512-token prompt, after one untimed run.
    const std::vector<int32_t> long_prompt(512, 9);
    std::vector<float> logits(size_t(model->config.vocab_size));
    for (int i = 0; i < 2; ++i) {
      e->rewind(0);
      cuda::check(cudaDeviceSynchronize(), "prefill");
      const auto s = Clock::now();
      e->forward(long_prompt, logits.data());
      r.prefill_tps = 512 / seconds(s);
    }
    r.decode_tps = decode_rate(*e, prompt, steps, false, r.finite);
    r.argmax_tps = decode_rate(*e, prompt, steps, true, r.finite);
    r.used_gb = double(gpu_used() - before) / 1e9;
  }
  {
    CudaEngineSettings eager;
    eager.use_graphs = false;
    auto e = create_cuda_engine(*model, o, eager);
    r.eager_tps = decode_rate(*e, prompt, steps, false, r.finite);
  }
  return r;
}

std::vector<BenchConfig> parse_configs(const std::string& configs) {
  std::vector<BenchConfig> out;
  std::stringstream list(configs);
  std::string item;
  while (std::getline(list, item, ',')) {
    if (item == "2x8g8") out.push_back({item, 2, 8});
    else if (item == "1x16g8") out.push_back({item, 1, 16});
    else if (item == "1x8g8") out.push_back({item, 1, 8});
    else if (item == "fp16") out.push_back({item, 0, 0});
    else fail("unknown configuration '", item, "' (fp16, 2x8g8, 1x16g8, 1x8g8)");
  }
  return out;
}

}  // namespace
}  // namespace aqlm

int main(int argc, char** argv) {
  using namespace aqlm;
  std::string configs = "fp16,2x8g8,1x16g8";
  int prompt = 128, steps = 128, layers = 32;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--configs")) configs = argv[++i];
    else if (!std::strcmp(argv[i], "--prompt")) prompt = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--decode")) steps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--layers")) layers = std::atoi(argv[++i]);
  }
  try {
    if (cuda::device_count() == 0) {  // the models and the memory plan still get built and checked
      std::printf("no GPU (%s); GPU memory the engine would take:\n", cuda::no_device_reason().c_str());
      for (const BenchConfig& bc : parse_configs(configs)) {
        EngineOptions o;
        o.device = Device::Cuda;
        o.context_length = 4096;
        std::printf("  %-7s %.2f GB\n", bc.name.c_str(), double(cuda_engine_memory_bytes(*make_model(bc, layers), o)) / 1e9);
      }
      return 0;
    }
    const double bw = copy_gbps();
    std::printf("%s; device copy %.0f GB/s (read + write); Llama-2-7B shape, %d layers; decode %d steps after a "
                "%d-token prompt\n",
                cuda::device_properties().name.c_str(), bw, layers, steps, prompt);
    std::vector<Result> results;
    for (const BenchConfig& bc : parse_configs(configs)) {
      results.push_back(run_config(bc, layers, prompt, steps));
      const Result& r = results.back();
      std::printf("%-7s loaded in %.1f s: decode %.1f tok/s (argmax %.1f, eager %.1f), prefill %.0f tok/s, "
                  "GPU memory %.2f GB (estimate %.2f)%s\n",
                  r.name.c_str(), r.load_s, r.decode_tps, r.argmax_tps, r.eager_tps, r.prefill_tps, r.used_gb,
                  r.estimate_gb, r.finite ? "" : "  NON-FINITE LOGITS");
      std::fflush(stdout);
    }
    std::printf("\n| config | decode tok/s (graphs) | argmax | eager | vs fp16 | bytes/step | floor tok/s | of floor "
                "| prefill tok/s | GPU GB |\n|---|---|---|---|---|---|---|---|---|---|\n");
    const double base = results.empty() || results[0].name != "fp16" ? 0 : results[0].decode_tps;
    for (const Result& r : results) {
      const double floor = bw * 1e9 / r.step_bytes;
      char ratio[32] = "-";
      if (base > 0) std::snprintf(ratio, sizeof ratio, "%.2fx", r.decode_tps / base);
      std::printf("| %s | %.1f | %.1f | %.1f | %s | %.2f GB | %.0f | %.0f%% | %.0f | %.2f |\n", r.name.c_str(),
                  r.decode_tps, r.argmax_tps, r.eager_tps, ratio,
                  r.step_bytes / 1e9, floor, 100.0 * r.decode_tps / floor, r.prefill_tps, r.used_gb);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
