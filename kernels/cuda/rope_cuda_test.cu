// RoPE + KV-cache store against kernels/cpu/rope.h on fresh random heads and angles, with
// padding in the fused q/k/v rows and in the cache that must stay untouched.
#include "kernels/cuda/rope_cuda.h"

#include <cmath>

#include "kernels/cpu/rope.h"
#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

struct RopeCase {
  int n_tokens, n_heads, kv_heads, head_dim, pos0;
  DType act;
};

class RopeCuda : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeCuda, RotatesQAndKAndStoresTheCache) {
  AQLM_REQUIRE_GPU();
  const RopeCase c = GetParam();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const int hd = c.head_dim, half = hd / 2, capacity = c.pos0 + c.n_tokens + 3;
  const int64_t q_dim = int64_t(c.n_heads) * hd, kv_dim = int64_t(c.kv_heads) * hd;
  const int64_t ld = q_dim + 2 * kv_dim + 5;  // 5 elements of padding per row
  const test::ActData qkv = test::random_act(size_t(c.n_tokens * ld), c.act, rng);

  // Angles p * theta^(-2i/d) for every position, as the engine's RopeTable holds them.
  std::vector<float> cos_t(size_t(capacity) * half), sin_t(cos_t.size());
  for (int p = 0; p < capacity; ++p)
    for (int i = 0; i < half; ++i) {
      const double angle = p * std::pow(10000.0, -2.0 * i / hd);
      cos_t[size_t(p) * half + i] = float(std::cos(angle));
      sin_t[size_t(p) * half + i] = float(std::sin(angle));
    }
  const int pos0 = c.pos0;
  DeviceBuffer d_qkv(qkv.bits), d_cos(cos_t), d_sin(sin_t), d_pos(std::vector<int>{pos0});
  const size_t cache_elems = size_t(c.kv_heads) * capacity * hd;
  DeviceBuffer k_cache(cache_elems * 2), v_cache(cache_elems * 2);
  k_cache.poison();
  v_cache.poison();

  RopeStoreArgs a;
  a.qkv = d_qkv.get();
  a.ld = ld;
  a.k_offset = q_dim;
  a.v_offset = q_dim + kv_dim;
  a.n_tokens = c.n_tokens;
  a.n_heads = c.n_heads;
  a.kv_heads = c.kv_heads;
  a.head_dim = hd;
  a.pos0 = d_pos.as<int>();
  a.cos = d_cos.as<float>();
  a.sin = d_sin.as<float>();
  a.k_cache = k_cache.get();
  a.v_cache = v_cache.get();
  a.capacity = capacity;
  rope_store_kv(a, c.act);
  const auto got_qkv = d_qkv.download<uint16_t>();
  const auto got_k = k_cache.download<uint16_t>();
  const auto got_v = v_cache.download<uint16_t>();

  // One rounding of an fp32 rotation (a*c - b*s: < 2 ulp of fp32 apart between the FMA
  // orders) to the activation type.
  auto close = [&](uint16_t got, float want) {
    const double g = test::from_act(got, c.act);
    return std::fabs(g - want) <= test::act_rounding(c.act) * std::fabs(want) * 1.01 + 1e-6;
  };
  for (int t = 0; t < c.n_tokens; ++t) {
    const int p = pos0 + t;
    std::vector<float> row(qkv.values.begin() + t * ld, qkv.values.begin() + (t + 1) * ld);
    cpu::rope_apply(row.data(), c.n_heads, hd, &cos_t[size_t(p) * half], &sin_t[size_t(p) * half]);
    cpu::rope_apply(row.data() + q_dim, c.kv_heads, hd, &cos_t[size_t(p) * half], &sin_t[size_t(p) * half]);
    for (int64_t i = 0; i < q_dim; ++i)
      ASSERT_TRUE(close(got_qkv[size_t(t * ld + i)], row[size_t(i)]))
          << "token " << t << " q element " << i << ": " << test::from_act(got_qkv[size_t(t * ld + i)], c.act)
          << " vs " << row[size_t(i)];
    // k and v stay in the row as they were (only the cache gets the rotated k); padding too.
    for (int64_t i = q_dim; i < ld; ++i) ASSERT_EQ(got_qkv[size_t(t * ld + i)], qkv.bits[size_t(t * ld + i)]) << i;
    for (int h = 0; h < c.kv_heads; ++h)
      for (int d = 0; d < hd; ++d) {
        const size_t slot = (size_t(h) * capacity + p) * hd + d;
        ASSERT_TRUE(close(got_k[slot], row[size_t(q_dim + h * hd + d)])) << "token " << t << " k head " << h << " d " << d;
        ASSERT_EQ(got_v[slot], qkv.bits[size_t(t * ld + q_dim + kv_dim + h * hd + d)]) << "v head " << h << " d " << d;
      }
  }
  // Cache rows outside [pos0, pos0 + n) keep the poison.
  for (int h = 0; h < c.kv_heads; ++h)
    for (int p = 0; p < capacity; ++p) {
      if (p >= pos0 && p < pos0 + c.n_tokens) continue;
      for (int d = 0; d < hd; ++d) {
        const size_t slot = (size_t(h) * capacity + p) * hd + d;
        ASSERT_EQ(got_k[slot], 0xffff) << "k cache row " << p << " was written";
        ASSERT_EQ(got_v[slot], 0xffff) << "v cache row " << p << " was written";
      }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RopeCuda,
                         ::testing::Values(RopeCase{1, 32, 32, 128, 0, DType::F16}, RopeCase{1, 9, 3, 64, 1234, DType::F16},
                                           RopeCase{7, 4, 2, 10, 3, DType::BF16}, RopeCase{33, 8, 4, 8, 100, DType::F16},
                                           RopeCase{5, 4, 1, 256, 2047, DType::BF16}),
                         [](const auto& info) {
                           const RopeCase& c = info.param;
                           return str("n", c.n_tokens, "_h", c.n_heads, "_kv", c.kv_heads, "_d", c.head_dim, "_pos",
                                      c.pos0, "_", test::act_name(c.act));
                         });

TEST(RopeCudaErrors, OddHeadDimensionIsRefused) {
  RopeStoreArgs a;
  int dummy = 0;
  a.qkv = a.k_cache = a.v_cache = &dummy;
  a.pos0 = &dummy;
  a.cos = a.sin = reinterpret_cast<const float*>(&dummy);
  a.n_tokens = 1;
  a.n_heads = a.kv_heads = 1;
  a.head_dim = 7;
  try {
    rope_store_kv(a, DType::F16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "RoPE: 1 tokens, 1/1 heads of dimension 7 (an even head dimension is needed)");
  }
}

}  // namespace
}  // namespace aqlm::cuda
