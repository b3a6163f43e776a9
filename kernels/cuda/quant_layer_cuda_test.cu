// The GPU layer-quantizer kernels against direct CPU references on fresh random inputs: the
// reconstruction error, float64 dot products, the codebook and scale gradients (as sums over
// every place, in double), Adam (torch's formula), the sort / offsets / centroid-mean step of
// k-means (exact: the same additions in the same order) and the visiting-order permutations.
// Outputs are poisoned before each run. Without a GPU the tests skip with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cuda/quant_cuda_common.h"
#include "kernels/cuda/quant_layer_cuda.h"

namespace aqlm::cuda {
namespace {

#define AQLM_REQUIRE_GPU() \
  if (device_count() == 0) GTEST_SKIP() << no_device_reason()

struct HostLayer {
  LayerDims d;
  std::vector<float> w, codebooks, scales;
  std::vector<uint16_t> codes;
};

HostLayer random_layer(int64_t out, int64_t in, int g, int M, int nbits, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  HostLayer h;
  h.d = LayerDims{out, in, g, M, int64_t(1) << nbits};
  h.w.resize(size_t(out * in));
  for (auto& v : h.w) v = normal(rng);
  h.codebooks.resize(size_t(M * h.d.K * g));
  for (auto& v : h.codebooks) v = normal(rng) * 0.3f;
  h.scales.resize(size_t(out));
  for (auto& v : h.scales) v = 0.5f + std::abs(normal(rng));
  h.codes.resize(size_t(out * h.d.J() * M));
  std::uniform_int_distribution<int> code(0, int(h.d.K) - 1);
  for (auto& c : h.codes) c = uint16_t(code(rng));
  return h;
}

template <typename T>
DeviceArray<T> on_device(const std::vector<T>& v) {
  DeviceArray<T> a(std::max<size_t>(v.size(), 1), "test");
  if (!v.empty()) a.upload(v);
  return a;
}

// sum_m codebooks[m][code] for place (o, j), component c, as the kernels add them (float, m order).
float code_sum(const HostLayer& h, int64_t o, int64_t j, int c) {
  float s = 0;
  for (int m = 0; m < h.d.M; ++m) s += h.codebooks[size_t((m * h.d.K + h.codes[size_t((o * h.d.J() + j) * h.d.M + m)]) * h.d.g + c)];
  return s;
}

class LayerKernels : public ::testing::TestWithParam<std::tuple<int, int, int>> {};  // g, M, nbits

TEST_P(LayerKernels, ReconstructionErrorAndDequantization) {
  AQLM_REQUIRE_GPU();
  const auto [g, M, nbits] = GetParam();
  const HostLayer h = random_layer(37, 16 * g, g, M, nbits, 11);
  auto w = on_device(h.w), cb = on_device(h.codebooks), sc = on_device(h.scales);
  auto codes = on_device(h.codes);
  DeviceArray<float> err(h.w.size(), "test"), deq(h.w.size(), "test");
  err.poison();
  deq.poison();
  dequantize_error(h.d, w.data(), codes.data(), cb.data(), sc.data(), err.data());
  dequantize_layer(h.d, codes.data(), cb.data(), sc.data(), deq.data());
  const auto e = err.to_host(), q = deq.to_host();
  for (int64_t o = 0; o < h.d.out; ++o)
    for (int64_t i = 0; i < h.d.in; ++i) {
      const double ref = double(h.scales[size_t(o)]) * double(code_sum(h, o, i / g, int(i % g)));
      // One float rounding of the product (and of the subtraction): relative 1e-6 of the terms.
      ASSERT_NEAR(q[size_t(o * h.d.in + i)], ref, 1e-6 * (std::abs(ref) + 1e-3)) << o << "," << i;
      ASSERT_NEAR(e[size_t(o * h.d.in + i)], double(h.w[size_t(o * h.d.in + i)]) - ref,
                  1e-6 * (std::abs(ref) + std::abs(h.w[size_t(o * h.d.in + i)]) + 1e-3));
    }
}

TEST_P(LayerKernels, GradientsAreTheSumsOverEveryPlace) {
  AQLM_REQUIRE_GPU();
  const auto [g, M, nbits] = GetParam();
  const HostLayer h = random_layer(53, 12 * g, g, M, nbits, 12);
  const int64_t J = h.d.J(), places = h.d.out * J, words = int64_t(M) * h.d.K;
  std::vector<float> r(h.w.size());
  std::mt19937_64 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : r) v = normal(rng);
  auto cb = on_device(h.codebooks), sc = on_device(h.scales), rd = on_device(r);
  auto codes = on_device(h.codes);
  DeviceArray<uint32_t> keys(size_t(places * M), "test"), values(keys.size(), "test"), sorted(keys.size(), "test"),
      where(keys.size(), "test");
  DeviceArray<int64_t> offsets(size_t(words + 1), "test");
  SortScratch scratch;
  code_keys(codes.data(), places, M, h.d.K, keys.data(), values.data());
  int bits = 1;
  while ((int64_t(1) << bits) < words) ++bits;
  sort_pairs(keys.data(), sorted.data(), values.data(), where.data(), places * M, bits, scratch);
  segment_offsets(sorted.data(), places * M, words, offsets.data());
  DeviceArray<float> gcb(h.codebooks.size(), "test"), gsc(h.scales.size(), "test");
  gcb.poison();
  gsc.poison();
  const double factor = -2.0 / double(h.d.out);
  codebook_gradient(h.d, where.data(), offsets.data(), sc.data(), rd.data(), factor, gcb.data());
  scale_gradient(h.d, codes.data(), cb.data(), rd.data(), factor, gsc.data());
  const auto got_cb = gcb.to_host(), got_sc = gsc.to_host();

  std::vector<double> ref_cb(h.codebooks.size(), 0.0), ref_sc(h.scales.size(), 0.0);
  for (int64_t o = 0; o < h.d.out; ++o)
    for (int64_t j = 0; j < J; ++j)
      for (int c = 0; c < g; ++c) {
        const double rv = r[size_t(o * h.d.in + j * g + c)];
        for (int m = 0; m < M; ++m)
          ref_cb[size_t((m * h.d.K + h.codes[size_t((o * J + j) * M + m)]) * g + c)] += double(h.scales[size_t(o)]) * rv;
        ref_sc[size_t(o)] += double(code_sum(h, o, j, c)) * rv;
      }
  // Double sums of a few hundred terms, then one float rounding: 1e-6 relative (plus a floor
  // for codewords whose terms cancel).
  for (size_t i = 0; i < ref_cb.size(); ++i) ASSERT_NEAR(got_cb[i], factor * ref_cb[i], 1e-6 * std::abs(factor * ref_cb[i]) + 1e-9) << i;
  for (size_t i = 0; i < ref_sc.size(); ++i) ASSERT_NEAR(got_sc[i], factor * ref_sc[i], 1e-6 * std::abs(factor * ref_sc[i]) + 1e-9) << i;
}

INSTANTIATE_TEST_SUITE_P(Configs, LayerKernels,
                         ::testing::Values(std::make_tuple(8, 1, 8), std::make_tuple(8, 2, 8), std::make_tuple(4, 3, 5),
                                           std::make_tuple(16, 1, 10), std::make_tuple(8, 1, 16)));

TEST(LayerKernelsMisc, DotProductsInDouble) {
  AQLM_REQUIRE_GPU();
  for (size_t n : {size_t(1), size_t(1000), size_t(3'000'001)}) {
    std::mt19937_64 rng(n);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> a(n), b(n);
    for (auto& v : a) v = normal(rng);
    for (auto& v : b) v = normal(rng);
    long double ref = 0;
    for (size_t i = 0; i < n; ++i) ref += (long double)a[i] * b[i];
    auto ad = on_device(a), bd = on_device(b);
    DeviceArray<double> partials(kDotPartials, "test"), result(1, "test");
    result.poison();
    dot_double(ad.data(), bd.data(), n, partials.data(), result.data());
    double got = 0;
    result.download(&got, 1);
    // Exact products, double sums of <= 3M terms of size ~1 with a total of ~sqrt(n): 1e-12 of n.
    EXPECT_NEAR(got, double(ref), 1e-12 * double(n)) << n;
    double again = 0;
    dot_double(ad.data(), bd.data(), n, partials.data(), result.data());
    result.download(&again, 1);
    EXPECT_EQ(got, again) << "the partition is fixed, so the sum is the same every time";
  }
}

TEST(LayerKernelsMisc, AdamStepIsTorchsFormula) {
  AQLM_REQUIRE_GPU();
  const size_t n = 10007;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> value(n), grad(n), m(n), v(n);
  for (size_t i = 0; i < n; ++i) {
    value[i] = normal(rng);
    grad[i] = normal(rng);
    m[i] = normal(rng) * 0.1f;
    v[i] = std::abs(normal(rng)) * 0.01f;
  }
  auto vd = on_device(value), gd = on_device(grad), md = on_device(m), sd = on_device(v);
  const double b1 = 0.9, b2 = 0.95, lr = 1e-3, t = 7;
  const double step_size = lr / (1 - std::pow(b1, t)), vc = 1 / std::sqrt(1 - std::pow(b2, t));
  adam_step(vd.data(), gd.data(), md.data(), sd.data(), n, b1, b2, step_size, vc, 1e-8);
  const auto got_value = vd.to_host(), got_m = md.to_host(), got_v = sd.to_host();
  for (size_t i = 0; i < n; ++i) {
    const double mm = b1 * m[i] + (1 - b1) * grad[i], vv = b2 * v[i] + (1 - b2) * double(grad[i]) * grad[i];
    const double ref = value[i] - step_size * mm / (std::sqrt(vv) * vc + 1e-8);
    // Float storage of the results; fma contraction may differ from this expression by an ulp.
    ASSERT_NEAR(got_m[i], mm, 2e-7 * std::abs(mm) + 1e-12);
    ASSERT_NEAR(got_v[i], vv, 2e-7 * std::abs(vv) + 1e-12);
    ASSERT_NEAR(got_value[i], ref, 2e-7 * std::abs(ref) + 1e-9);
  }
}

TEST(LayerKernelsMisc, KmeansUpdateAddsMembersInOrder) {
  AQLM_REQUIRE_GPU();
  const int g = 8;
  for (int64_t k : {int64_t(1), int64_t(256), int64_t(3000)}) {
    const int64_t n = 20011;
    std::mt19937_64 rng{uint64_t(k)};
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int64_t> pick(0, std::max<int64_t>(0, k - 2));  // the last cluster stays empty
    std::vector<float> data(size_t(n * g)), old_centroids(size_t(k * g));
    for (auto& x : data) x = normal(rng);
    for (auto& x : old_centroids) x = normal(rng);
    std::vector<uint32_t> assign(static_cast<size_t>(n));
    for (auto& a : assign) a = uint32_t(pick(rng));
    auto dd = on_device(data), cd = on_device(old_centroids);
    auto ad = on_device(assign);
    DeviceArray<uint32_t> ids(size_t(n), "test"), sorted(size_t(n), "test"), members(size_t(n), "test");
    DeviceArray<int64_t> offsets(size_t(k + 1), "test");
    SortScratch scratch;
    iota(ids.data(), n);
    int bits = 1;
    while ((int64_t(1) << bits) < k) ++bits;
    sort_pairs(ad.data(), sorted.data(), ids.data(), members.data(), n, bits, scratch);
    segment_offsets(sorted.data(), n, k, offsets.data());
    centroid_means(dd.data(), members.data(), offsets.data(), k, g, cd.data());
    const auto got = cd.to_host();
    const auto got_members = members.to_host();
    for (int64_t i = 1; i < n; ++i)  // stable: members of a cluster in ascending point order
      if (assign[got_members[size_t(i)]] == assign[got_members[size_t(i - 1)]])
        ASSERT_LT(got_members[size_t(i - 1)], got_members[size_t(i)]);
    for (int64_t c = 0; c < k; ++c) {
      std::vector<double> sum(g, 0.0);
      int64_t count = 0;
      for (int64_t i = 0; i < n; ++i)
        if (assign[size_t(i)] == uint32_t(c)) {
          ++count;
          for (int d = 0; d < g; ++d) sum[size_t(d)] += double(data[size_t(i * g + d)]);
        }
      for (int d = 0; d < g; ++d) {
        const float ref = count ? float(sum[size_t(d)] / double(count)) : old_centroids[size_t(c * g + d)];
        ASSERT_EQ(got[size_t(c * g + d)], ref) << "centroid " << c << " of " << k << " (" << count << " members)";
      }
    }
  }
}

TEST(LayerKernelsMisc, VisitingOrderPermutations) {
  AQLM_REQUIRE_GPU();
  const int64_t n = 72, rows = 13;
  std::vector<float> square(size_t(n * n)), wide(size_t(rows * n));
  std::iota(square.begin(), square.end(), 0.0f);
  std::iota(wide.begin(), wide.end(), 0.5f);
  std::vector<int64_t> column(static_cast<size_t>(n));
  std::iota(column.begin(), column.end(), int64_t(0));
  std::shuffle(column.begin(), column.end(), std::mt19937_64(3));
  auto sd = on_device(square), wd = on_device(wide);
  auto cd = on_device(column);
  DeviceArray<float> ps(square.size(), "test"), pw(wide.size(), "test");
  ps.poison();
  pw.poison();
  permute_square(sd.data(), cd.data(), n, ps.data());
  permute_columns(wd.data(), cd.data(), rows, n, pw.data());
  const auto a = ps.to_host(), b = pw.to_host();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) ASSERT_EQ(a[size_t(r * n + c)], square[size_t(column[size_t(r)] * n + column[size_t(c)])]);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) ASSERT_EQ(b[size_t(r * n + c)], wide[size_t(r * n + column[size_t(c)])]);
}

}  // namespace
}  // namespace aqlm::cuda
