// Attention of one KV head (SmolLM2: group of 3 query heads, head_dim 64), one thread:
// a decode step against a growing cache and a block of prefill queries.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernel_test_util.h"

namespace aqlm::cpu {
namespace {

void BM_Attention(benchmark::State& state) {
  const int64_t context = state.range(0), n_tokens = state.range(1), group = 3, hd = 64;
  const auto q = test::random_floats(size_t(n_tokens * group * hd), 1);
  const auto k = test::random_floats(size_t(context * hd), 2);
  const auto v = test::random_floats(size_t(context * hd), 3);
  std::vector<float> out(q.size()), scratch(attention_scratch_floats(n_tokens, group, hd, context - 1));
  AttentionArgs a;
  a.q = q.data();
  a.ldq = group * hd;
  a.k = k.data();
  a.v = v.data();
  a.n_tokens = n_tokens;
  a.group = group;
  a.head_dim = hd;
  a.first_pos = context - n_tokens;
  a.scale = 0.125f;
  a.out = out.data();
  a.ldo = group * hd;
  for (auto _ : state) {
    attention(a, scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  // q.k and p.v over the visible keys (the causal triangle of the block).
  double pairs = 0;
  for (int64_t t = 0; t < n_tokens; ++t) pairs += double(a.first_pos + t + 1);
  const double flops = 4.0 * pairs * double(group * hd);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Attention)->ArgNames({"context", "tokens"})->Args({512, 1})->Args({4096, 1})->Args({512, 512})->Args({2048, 256});

}  // namespace
}  // namespace aqlm::cpu
