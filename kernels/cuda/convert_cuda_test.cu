// Conversions and the embedding lookup against core/common/half.h (the host conversions the
// CPU engine uses): bit-identical on fresh random data, every element written.
#include "kernels/cuda/convert_cuda.h"

#include <cstring>

#include "kernels/cuda/engine_test_util.h"

namespace aqlm::cuda {
namespace {

using test::DeviceBuffer;

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Floats over the whole range fp16 and bf16 round into: subnormal, normal and overflowing
// magnitudes (random exponent), and values exactly halfway between two fp16 numbers.
std::vector<float> wide_floats(size_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> exponent(-30, 20);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    float x = std::ldexp(mant(rng), exponent(rng));
    if (i % 7 == 0) x = f16_to_f32(uint16_t(rng() & 0x7bff)) + std::ldexp(1.0f, -11);  // near-halfway
    v[i] = (rng() & 1) ? -x : x;
  }
  return v;
}

TEST(ConvertCuda, Float32ToHalfTypesRoundsLikeTheHost) {
  AQLM_REQUIRE_GPU();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const size_t n = 100003;  // odd: the grid-stride tail
  const std::vector<float> src = wide_floats(n, rng);
  DeviceBuffer in(src), out(n * 2);
  for (ElementType to : {ElementType::F16, ElementType::BF16}) {
    out.poison();
    convert(in.get(), ElementType::F32, out.get(), to, n);
    const auto got = out.download<uint16_t>();
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint16_t want = to == ElementType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
      if (got[i] != want && ++bad <= 5)
        ADD_FAILURE() << "element " << i << " (" << src[i] << "): got 0x" << std::hex << got[i] << " want 0x" << want;
    }
    EXPECT_EQ(bad, 0u) << (to == ElementType::F16 ? "to fp16" : "to bf16");
  }
}

TEST(ConvertCuda, EveryHalfBitPatternWidensExactly) {
  AQLM_REQUIRE_GPU();
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  DeviceBuffer in(all), out(all.size() * 4);
  for (ElementType from : {ElementType::F16, ElementType::BF16}) {
    out.poison();
    convert(in.get(), from, out.get(), ElementType::F32, all.size());
    const auto got = out.download<float>();
    for (size_t i = 0; i < all.size(); ++i) {
      const float want = from == ElementType::F16 ? f16_to_f32(all[i]) : bf16_to_f32(all[i]);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(got[i])) << i;
      } else {
        ASSERT_EQ(float_bits(got[i]), float_bits(want)) << "pattern 0x" << std::hex << i;
      }
    }
  }
}

TEST(ConvertCuda, HalfToBfloatAndBackGoThroughFloat) {
  AQLM_REQUIRE_GPU();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const size_t n = 4099;
  std::vector<uint16_t> src(n);
  for (auto& b : src) b = uint16_t(rng() & 0x7bff) | uint16_t(rng() & 0x8000);  // finite fp16 and bf16 patterns
  DeviceBuffer in(src), out(n * 2);
  for (ElementType from : {ElementType::F16, ElementType::BF16}) {
    const ElementType to = from == ElementType::F16 ? ElementType::BF16 : ElementType::F16;
    out.poison();
    convert(in.get(), from, out.get(), to, n);
    const auto got = out.download<uint16_t>();
    for (size_t i = 0; i < n; ++i) {
      const float f = from == ElementType::F16 ? f16_to_f32(src[i]) : bf16_to_f32(src[i]);
      const uint16_t want = to == ElementType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
      ASSERT_EQ(got[i], want) << "element " << i << " (" << f << ")";
    }
  }
}

TEST(ConvertCuda, EmbeddingLookupCopiesTheRows) {
  AQLM_REQUIRE_GPU();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const int64_t vocab = 1001, dim = 77;
  for (DType act : {DType::F16, DType::BF16}) {
    const test::ActData table = test::random_act(size_t(vocab * dim), act, rng);
    std::vector<int32_t> ids = {0, int32_t(vocab - 1), 17, 17, 500};
    for (int i = 0; i < 6; ++i) ids.push_back(int32_t(rng() % uint64_t(vocab)));
    DeviceBuffer t(table.bits), d_ids(ids), x(ids.size() * size_t(dim) * 4);
    x.poison();
    embedding_lookup(t.get(), act, d_ids.as<int32_t>(), int(ids.size()), dim, x.as<float>());
    const auto got = x.download<float>();
    for (size_t r = 0; r < ids.size(); ++r)
      for (int64_t c = 0; c < dim; ++c)
        ASSERT_EQ(got[r * size_t(dim) + size_t(c)], table.values[size_t(ids[r] * dim + c)])
            << test::act_name(act) << " row " << r << " col " << c;
  }
}

TEST(ConvertCuda, RejectsMissingBuffers) {
  try {
    convert(nullptr, ElementType::F32, nullptr, ElementType::F16, 10);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "element conversion: missing source or destination buffer");
  }
}

}  // namespace
}  // namespace aqlm::cuda
