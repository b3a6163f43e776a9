// Decode (split-K) and prefill (tiled) attention against kernels/cpu/attention.h on fresh
// random queries and caches holding the same fp16/bf16 values: GQA groups up to 10, head
// dimensions 8..256 (80: not a multiple of 64), sliding windows, long caches, every split count.
#include "kernels/cuda/attention_cuda.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

struct AttnCase {
  int n_tokens;  // 1 = the decode kernel
  int n_heads, kv_heads, head_dim;
  int pos0;      // position of the first query token
  int window;
  DType act;
  int splits = 0;  // decode: 0 = attention_decode_splits
};

std::string case_name(const AttnCase& c) {
  return str(c.n_tokens == 1 ? "decode" : "prefill", c.n_tokens == 1 ? "" : str(c.n_tokens), "_h", c.n_heads, "_kv",
             c.kv_heads, "_d", c.head_dim, "_pos", c.pos0, c.window ? str("_win", c.window) : "", "_",
             test::act_name(c.act), c.splits ? str("_splits", c.splits) : "");
}

struct Problem {
  AttnCase c;
  int capacity;
  test::ActData q, k, v;  // q [n, n_heads*hd] (row stride ldq), caches [kv_heads, capacity, hd]
  int64_t ldq, ldo;
};

Problem make_problem(const AttnCase& c, std::mt19937_64& rng) {
  Problem p{c, c.pos0 + c.n_tokens + 5, {}, {}, {}, 0, 0};
  p.ldq = int64_t(c.n_heads) * c.head_dim + 24;  // q sits in a wider fused row
  p.ldo = int64_t(c.n_heads) * c.head_dim + 8;
  p.q = test::random_act(size_t(c.n_tokens * p.ldq), c.act, rng);
  // Keys scaled so that the scores spread over several units (peaked and flat rows both occur).
  p.k = test::random_act(size_t(c.kv_heads) * p.capacity * c.head_dim, c.act, rng, 1.5f);
  p.v = test::random_act(size_t(c.kv_heads) * p.capacity * c.head_dim, c.act, rng);
  return p;
}

// cpu::attention on the same values: [n, ldo] floats (padding left 0).
std::vector<float> reference(const Problem& p) {
  const AttnCase& c = p.c;
  const int group = c.n_heads / c.kv_heads, hd = c.head_dim;
  std::vector<float> out(size_t(c.n_tokens * p.ldo), 0.0f);
  std::vector<float> scratch(cpu::attention_scratch_floats(c.n_tokens, group, hd, c.pos0 + c.n_tokens));
  for (int h = 0; h < c.kv_heads; ++h) {
    cpu::AttentionArgs a;
    a.q = p.q.values.data() + size_t(h) * group * hd;
    a.ldq = p.ldq;
    a.k = p.k.values.data() + size_t(h) * p.capacity * hd;
    a.v = p.v.values.data() + size_t(h) * p.capacity * hd;
    a.n_tokens = c.n_tokens;
    a.group = group;
    a.head_dim = hd;
    a.first_pos = c.pos0;
    a.window = c.window;
    a.scale = float(1.0 / std::sqrt(double(hd)));
    a.out = out.data() + size_t(h) * group * hd;
    a.ldo = p.ldo;
    cpu::attention(a, scratch.data());
  }
  return out;
}

class AttentionCuda : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionCuda, MatchesCpuAttention) {
  AQLM_REQUIRE_GPU();
  const AttnCase c = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const Problem p = make_problem(c, rng);
  DeviceBuffer dq(p.q.bits), dk(p.k.bits), dv(p.v.bits), dpos(std::vector<int>{c.pos0});
  DeviceBuffer dout(size_t(c.n_tokens * p.ldo) * 2);

  AttentionArgs a;
  a.q = dq.get();
  a.ldq = p.ldq;
  a.out = dout.get();
  a.ldo = p.ldo;
  a.k_cache = dk.get();
  a.v_cache = dv.get();
  a.capacity = p.capacity;
  a.n_tokens = c.n_tokens;
  a.n_heads = c.n_heads;
  a.kv_heads = c.kv_heads;
  a.head_dim = c.head_dim;
  a.pos0 = dpos.as<int>();
  a.window = c.window;
  a.scale = float(1.0 / std::sqrt(double(c.head_dim)));

  const int splits = c.splits ? c.splits : attention_decode_splits(c.n_heads, c.kv_heads, p.capacity);
  DeviceBuffer ws(attention_decode_workspace_floats(c.n_heads, c.head_dim, splits) * 4);
  auto run = [&] {
    dout.poison();
    if (c.n_tokens == 1)
      attention_decode(a, splits, ws.as<float>(), c.act);
    else
      attention_prefill(a, c.act);
    return dout.download<uint16_t>();
  };
  const auto got = run();
  const auto want = reference(p);
  // The output is a convex combination of values |v| < ~5: fp32 scores and sums (~1e-6
  // relative; __expf is not used) then one rounding to the activation type. Padding
  // between rows keeps the poison.
  const int64_t width = int64_t(c.n_heads) * c.head_dim;
  for (int t = 0; t < c.n_tokens; ++t) {
    for (int64_t i = 0; i < width; ++i) {
      const double g = test::from_act(got[size_t(t * p.ldo + i)], c.act), w = want[size_t(t * p.ldo + i)];
      ASSERT_LE(std::fabs(g - w), test::act_rounding(c.act) * std::fabs(w) * 1.01 + 2e-5)
          << "token " << t << " head " << i / c.head_dim << " dim " << i % c.head_dim << ": " << g << " vs " << w;
    }
    for (int64_t i = width; i < p.ldo; ++i) ASSERT_EQ(got[size_t(t * p.ldo + i)], 0xffff) << "padding written";
  }
  // Fixed summation order: a second run is bit-identical.
  EXPECT_EQ(run(), got);
}

INSTANTIATE_TEST_SUITE_P(
    Decode, AttentionCuda,
    ::testing::Values(AttnCase{1, 8, 8, 128, 0, 0, DType::F16}, AttnCase{1, 32, 32, 128, 300, 0, DType::F16},
                      AttnCase{1, 12, 4, 64, 517, 0, DType::BF16}, AttnCase{1, 32, 4, 128, 1000, 0, DType::F16},
                      AttnCase{1, 20, 2, 64, 200, 0, DType::F16}, AttnCase{1, 8, 4, 8, 77, 0, DType::F16},
                      AttnCase{1, 6, 2, 16, 100, 7, DType::F16}, AttnCase{1, 4, 1, 256, 999, 0, DType::BF16},
                      AttnCase{1, 10, 5, 80, 333, 0, DType::F16}, AttnCase{1, 9, 3, 64, 4000, 1000, DType::F16},
                      AttnCase{1, 8, 2, 128, 2500, 0, DType::F16, 1}, AttnCase{1, 8, 2, 128, 2500, 0, DType::F16, 64},
                      AttnCase{1, 4, 2, 64, 10, 0, DType::F16, 64}),
    [](const auto& info) { return case_name(info.param); });

INSTANTIATE_TEST_SUITE_P(
    Prefill, AttentionCuda,
    ::testing::Values(AttnCase{37, 8, 8, 128, 0, 0, DType::F16}, AttnCase{100, 12, 4, 64, 23, 0, DType::BF16},
                      AttnCase{2, 4, 2, 8, 0, 0, DType::F16}, AttnCase{50, 6, 2, 16, 9, 5, DType::F16},
                      AttnCase{19, 4, 1, 256, 40, 0, DType::F16}, AttnCase{64, 10, 5, 80, 100, 0, DType::BF16},
                      AttnCase{33, 20, 2, 64, 0, 0, DType::F16}, AttnCase{130, 9, 3, 64, 5, 50, DType::F16}),
    [](const auto& info) { return case_name(info.param); });

TEST(AttentionCudaErrors, UnsupportedShapesAreNamed) {
  AttentionArgs a;
  int dummy = 0;
  a.q = a.k_cache = a.v_cache = &dummy;
  a.out = &dummy;
  a.pos0 = &dummy;
  a.capacity = 16;
  a.n_tokens = 1;
  a.n_heads = 4;
  a.kv_heads = 2;
  a.ldq = a.ldo = 4 * 12;
  a.head_dim = 12;
  auto message = [&] {
    try {
      check_attention_shape(a);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(message(), "attention: head dimension 12 is not supported on CUDA (a multiple of 8 up to 256)");
  a.head_dim = 264;
  EXPECT_EQ(message(), "attention: head dimension 264 is not supported on CUDA (a multiple of 8 up to 256)");
  a.head_dim = 16;
  a.ldq = a.ldo = 64;
  a.kv_heads = 3;
  EXPECT_EQ(message(), "attention: 4 query heads do not split into 3 KV heads");
  a.kv_heads = 2;
  a.ldq = 60;
  EXPECT_EQ(message(), "attention: row strides 60/64 are shorter than 4 heads of 16");
  a.ldq = 64;
  EXPECT_EQ(message(), "(no error)");
}

}  // namespace
}  // namespace aqlm::cuda
