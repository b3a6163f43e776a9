// Engine speed on a real model (bench_runtime): prefill and decode tokens/s of the CPU engine.
// The model is $AQLM_BENCH_MODEL, else SmolLM2-135M-Instruct from the models cache; threads
// are $AQLM_BENCH_THREADS, else all cores. Results go to docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/common/paths.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"

namespace aqlm {
namespace {

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
};

Loaded& loaded() {
  static Loaded l = [] {
    Loaded r;
    const char* env = std::getenv("AQLM_BENCH_MODEL");
    const std::string path = env && *env ? env : (models_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf").string();
    LoadOptions lo;
    lo.load_tokenizer = false;
    r.model = load_model(path, lo);
    EngineOptions eo;
    if (const char* t = std::getenv("AQLM_BENCH_THREADS")) eo.threads = std::atoi(t);
    r.engine = create_engine(*r.model, eo);
    return r;
  }();
  return l;
}

std::vector<int32_t> tokens(int64_t n, int vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 7919 + 13) % vocab);
  return ids;
}

// One new token after `context` cached tokens (the KV cache is rewound after each step).
void BM_Decode(benchmark::State& state) {
  Engine& e = *loaded().engine;
  const int vocab = e.config().vocab_size;
  const auto prompt = tokens(state.range(0), vocab);
  std::vector<float> logits(static_cast<size_t>(vocab));
  e.rewind(0);
  e.forward(prompt, logits.data());
  const int32_t next[1] = {42};
  for (auto _ : state) {
    e.forward(next, logits.data());
    e.rewind(int(prompt.size()));
  }
  state.counters["tokens/s"] = benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Decode)->ArgName("context")->Arg(16)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

// A prompt of `tokens` tokens from an empty cache, last-token logits only.
void BM_Prefill(benchmark::State& state) {
  Engine& e = *loaded().engine;
  const int vocab = e.config().vocab_size;
  const auto prompt = tokens(state.range(0), vocab);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (auto _ : state) {
    e.rewind(0);
    e.forward(prompt, logits.data());
  }
  state.counters["tokens/s"] =
      benchmark::Counter(double(prompt.size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Prefill)->ArgName("tokens")->Arg(64)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace aqlm

BENCHMARK_MAIN();
