// Every hand-written backward of block_ops / block_aqlm against central finite differences in
// double, at sizes that cross the internal chunk boundaries (128 tokens, 64 weight rows, 64
// query rows, 64 AQLM rows), and the forward passes against plain double loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/common/thread_pool.h"
#include "core/quant/block_aqlm.h"
#include "core/quant/block_ops.h"
#include "core/quant/block_trainable.h"
#include "tests/quant/block_test_util.h"

namespace aqlm {
namespace {

using test::dot;
using test::numeric_gradient;
using test::random_vector;
using test::relative_error;

// A double-precision gradient that agrees with finite differences to 1e-6 (relative, norm-wise)
// is right: a wrong term or a missing factor shows up as an error of order 1.
constexpr double kGradientTolerance = 1e-6;

ThreadPool& pool() {
  static ThreadPool p(2);
  return p;
}

TEST(BlockOps, LinearGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(1);
  const int64_t n = 130, in = 7, out = 70;  // two token chunks, two weight-row chunks (64 + 6)
  auto x = random_vector(size_t(n * in), rng), w = random_vector(size_t(out * in), rng),
       b = random_vector(size_t(out), rng), r = random_vector(size_t(n * out), rng);
  std::vector<double> y(size_t(n * out));
  const auto loss = [&] {
    block_ops::linear_forward(pool(), x.data(), n, in, w.data(), b.data(), out, y.data());
    return dot(y, r);
  };
  // Forward against a plain loop.
  loss();
  double worst = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double ref = b[size_t(o)];
      for (int64_t i = 0; i < in; ++i) ref += x[size_t(t * in + i)] * w[size_t(o * in + i)];
      worst = std::max(worst, std::abs(ref - y[size_t(t * out + o)]));
    }
  EXPECT_LT(worst, 1e-13);

  std::vector<double> dx(x.size(), 5.0), dw(w.size(), 0.0), db(b.size(), 0.0);
  block_ops::linear_backward_input(pool(), r.data(), n, out, w.data(), in, dx.data(), false);
  block_ops::linear_backward_weight(pool(), r.data(), x.data(), n, out, in, dw.data());
  block_ops::bias_backward(pool(), r.data(), n, out, db.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(dw, numeric_gradient(w, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(db, numeric_gradient(b, loss)), kGradientTolerance);

  // accumulate = true adds to what is there; the weight gradient always accumulates.
  std::vector<double> dx2(x.size(), 1.0), dw2 = dw;
  block_ops::linear_backward_input(pool(), r.data(), n, out, w.data(), in, dx2.data(), true);
  block_ops::linear_backward_weight(pool(), r.data(), x.data(), n, out, in, dw2.data());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx2[i], dx[i] + 1.0, 1e-12);
  for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw2[i], 2 * dw[i], 1e-12);
}

TEST(BlockOps, RmsNormMatchesDefinitionAndFiniteDifferences) {
  std::mt19937_64 rng(2);
  const int64_t n = 130, dim = 9;
  const double eps = 1e-5;
  auto x = random_vector(size_t(n * dim), rng), w = random_vector(size_t(dim), rng),
       r = random_vector(size_t(n * dim), rng);
  std::vector<double> y(x.size()), inv(static_cast<size_t>(n));
  const auto loss = [&] {
    block_ops::rmsnorm_forward(pool(), x.data(), n, dim, w.data(), eps, y.data(), inv.data());
    return dot(y, r);
  };
  loss();
  for (int64_t t = 0; t < n; t += 17) {
    double ms = 0;
    for (int64_t i = 0; i < dim; ++i) ms += x[size_t(t * dim + i)] * x[size_t(t * dim + i)] / double(dim);
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(y[size_t(t * dim + i)], x[size_t(t * dim + i)] / std::sqrt(ms + eps) * w[size_t(i)], 1e-13);
  }
  std::vector<double> dx(x.size()), dw(w.size(), 0.0);
  block_ops::rmsnorm_backward(pool(), x.data(), inv.data(), n, dim, w.data(), r.data(), dx.data(), false, dw.data());
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(dw, numeric_gradient(w, loss)), kGradientTolerance);
}

TEST(BlockOps, RopeRotatesHalfSplitPairsAndBackwardIsTheTranspose) {
  std::mt19937_64 rng(3);
  const int64_t seqlen = 70, rows = 2 * seqlen, heads = 2, head_dim = 6, ld = heads * head_dim;
  const std::vector<double> inv_freq{1.0, 0.1, 0.01};
  const block_ops::RopeTable table(inv_freq, seqlen);
  auto x = random_vector(size_t(rows * ld), rng), r = random_vector(x.size(), rng);
  std::vector<double> y = x;
  block_ops::rope_forward(pool(), table, y.data(), rows, ld, heads, head_dim);
  // Row 2 * seqlen - 1 is the last token of window 1, at position seqlen - 1.
  const int64_t row = rows - 1, pos = seqlen - 1;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < 3; ++i) {
      const double a = x[size_t(row * ld + h * head_dim + i)], b = x[size_t(row * ld + h * head_dim + i + 3)];
      const double angle = double(pos) * inv_freq[size_t(i)];
      EXPECT_NEAR(y[size_t(row * ld + h * head_dim + i)], a * std::cos(angle) - b * std::sin(angle), 1e-13);
      EXPECT_NEAR(y[size_t(row * ld + h * head_dim + i + 3)], b * std::cos(angle) + a * std::sin(angle), 1e-13);
    }
  const auto loss = [&] {
    y = x;
    block_ops::rope_forward(pool(), table, y.data(), rows, ld, heads, head_dim);
    return dot(y, r);
  };
  std::vector<double> dx = r;
  block_ops::rope_backward(pool(), table, dx.data(), rows, ld, heads, head_dim);
  EXPECT_LT(relative_error(dx, numeric_gradient(x, loss)), kGradientTolerance);
}

// Plain double attention, one (window, head, query) at a time.
std::vector<double> naive_attention(const block_ops::AttentionShape& s, const std::vector<double>& q,
                                    const std::vector<double>& k, const std::vector<double>& v) {
  const int64_t ldq = s.heads * s.head_dim, ldk = s.kv_heads * s.head_dim;
  std::vector<double> out(q.size(), 0.0);
  for (int64_t w = 0; w < s.windows; ++w)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t kvh = h / (s.heads / s.kv_heads);
      for (int64_t i = 0; i < s.seqlen; ++i) {
        std::vector<double> score(size_t(s.seqlen), -INFINITY);
        double max = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          if (s.sliding_window > 0 && i - j >= s.sliding_window) continue;
          double d = 0;
          for (int64_t c = 0; c < s.head_dim; ++c)
            d += q[size_t((w * s.seqlen + i) * ldq + h * s.head_dim + c)] *
                 k[size_t((w * s.seqlen + j) * ldk + kvh * s.head_dim + c)];
          score[size_t(j)] = d / std::sqrt(double(s.head_dim));
          max = std::max(max, score[size_t(j)]);
        }
        double sum = 0;
        for (double& sc : score) sum += (sc = std::exp(sc - max));
        for (int64_t j = 0; j < s.seqlen; ++j)
          for (int64_t c = 0; c < s.head_dim; ++c)
            out[size_t((w * s.seqlen + i) * ldq + h * s.head_dim + c)] +=
                score[size_t(j)] / sum * v[size_t((w * s.seqlen + j) * ldk + kvh * s.head_dim + c)];
      }
    }
  return out;
}

class AttentionTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(AttentionTest, MatchesNaiveForwardAndFiniteDifferences) {
  // 70 tokens: two query blocks of 64 and 6; with a window of 50 the second block starts
  // reading keys at 15, exercising the band bookkeeping.
  const block_ops::AttentionShape s{2, 70, 4, 2, 4, GetParam()};
  std::mt19937_64 rng(4);
  const int64_t n = s.windows * s.seqlen;
  auto q = random_vector(size_t(n * s.heads * s.head_dim), rng), k = random_vector(size_t(n * s.kv_heads * s.head_dim), rng),
       v = random_vector(k.size(), rng), r = random_vector(q.size(), rng);
  std::vector<double> out(q.size()), lse(size_t(n * s.heads));
  const auto loss = [&] {
    block_ops::attention_forward(pool(), s, q.data(), k.data(), v.data(), out.data(), lse.data());
    return dot(out, r);
  };
  loss();
  EXPECT_LT(test::max_relative_error(out, naive_attention(s, q, k, v)), 1e-13);
  std::vector<double> dq(q.size()), dk(k.size(), 7.0), dv(v.size(), 7.0);  // overwritten, not accumulated
  block_ops::attention_backward(pool(), s, q.data(), k.data(), v.data(), out.data(), lse.data(), r.data(), dq.data(),
                                dk.data(), dv.data());
  EXPECT_LT(relative_error(dq, numeric_gradient(q, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(dk, numeric_gradient(k, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(dv, numeric_gradient(v, loss)), kGradientTolerance);
}

INSTANTIATE_TEST_SUITE_P(CausalAndSlidingWindow, AttentionTest, ::testing::Values(int64_t(0), int64_t(50)));

TEST(BlockOps, RopeThenAttentionGradientsMatchFiniteDifferences) {
  // The chain the block runs: q, k rotated (llama3-scaled frequencies), then attention;
  // gradients w.r.t. the unrotated q and k.
  RopeScaling llama3;
  llama3.type = "llama3";
  llama3.factor = 8.0;
  const std::vector<double> inv_freq = rope_inverse_frequencies(8, 500000.0, llama3);
  const block_ops::AttentionShape s{1, 70, 4, 2, 8, 0};  // 70 tokens: two query blocks
  const block_ops::RopeTable table(inv_freq, s.seqlen);
  std::mt19937_64 rng(8);
  const int64_t n = s.windows * s.seqlen, ldq = s.heads * s.head_dim, ldk = s.kv_heads * s.head_dim;
  auto q = random_vector(size_t(n * ldq), rng), k = random_vector(size_t(n * ldk), rng), v = random_vector(k.size(), rng),
       r = random_vector(q.size(), rng);
  std::vector<double> qr(q.size()), kr(k.size()), out(q.size()), lse(size_t(n * s.heads));
  const auto loss = [&] {
    qr = q;
    kr = k;
    block_ops::rope_forward(pool(), table, qr.data(), n, ldq, s.heads, s.head_dim);
    block_ops::rope_forward(pool(), table, kr.data(), n, ldk, s.kv_heads, s.head_dim);
    block_ops::attention_forward(pool(), s, qr.data(), kr.data(), v.data(), out.data(), lse.data());
    return dot(out, r);
  };
  loss();
  std::vector<double> dq(q.size()), dk(k.size()), dv(v.size());
  block_ops::attention_backward(pool(), s, qr.data(), kr.data(), v.data(), out.data(), lse.data(), r.data(), dq.data(),
                                dk.data(), dv.data());
  block_ops::rope_backward(pool(), table, dq.data(), n, ldq, s.heads, s.head_dim);
  block_ops::rope_backward(pool(), table, dk.data(), n, ldk, s.kv_heads, s.head_dim);
  EXPECT_LT(relative_error(dq, numeric_gradient(q, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(dk, numeric_gradient(k, loss)), kGradientTolerance);
}

TEST(BlockOps, SwigluMatchesDefinitionAndFiniteDifferences) {
  std::mt19937_64 rng(5);
  const int64_t n = 50;
  auto gate = random_vector(size_t(n), rng, 3.0), up = random_vector(size_t(n), rng), r = random_vector(size_t(n), rng);
  std::vector<double> act(static_cast<size_t>(n));
  const auto loss = [&] {
    block_ops::swiglu_forward(pool(), gate.data(), up.data(), n, act.data());
    return dot(act, r);
  };
  loss();
  for (int64_t i = 0; i < n; ++i)
    EXPECT_NEAR(act[size_t(i)], gate[size_t(i)] / (1 + std::exp(-gate[size_t(i)])) * up[size_t(i)], 1e-14);
  std::vector<double> d_gate(static_cast<size_t>(n)), d_up(static_cast<size_t>(n));
  block_ops::swiglu_backward(pool(), gate.data(), up.data(), r.data(), n, d_gate.data(), d_up.data());
  EXPECT_LT(relative_error(d_gate, numeric_gradient(gate, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(d_up, numeric_gradient(up, loss)), kGradientTolerance);
  // d_gate may overwrite d_act in place (the block does this to save a buffer).
  std::vector<double> in_place = r, d_up2(static_cast<size_t>(n));
  block_ops::swiglu_backward(pool(), gate.data(), up.data(), in_place.data(), n, in_place.data(), d_up2.data());
  EXPECT_EQ(in_place, d_gate);
  EXPECT_EQ(d_up2, d_up);
}

TEST(BlockAqlm, DequantizeAndGradientsWrtCodebooksAndScales) {
  std::mt19937_64 rng(6);
  AqlmTensors<double> t;
  t.out_features = 70;  // two row blocks of 64 and 6
  t.in_features = 8;
  t.num_codebooks = 2;
  t.nbits = 3;
  t.group_size = 4;
  std::vector<uint16_t> codes(size_t(t.out_features * t.groups_per_row() * t.num_codebooks));
  std::uniform_int_distribution<int> code(0, 7);
  for (auto& c : codes) c = uint16_t(code(rng));
  auto books = random_vector(size_t(t.codebook_values()), rng), scales = random_vector(size_t(t.out_features), rng),
       r = random_vector(size_t(t.out_features * t.in_features), rng);
  t.codes = codes.data();
  t.codebooks = books.data();
  t.scales = scales.data();
  std::vector<double> w(r.size());
  const auto loss = [&] {
    aqlm_dequantize(pool(), t, w.data());
    return dot(w, r);
  };
  loss();
  // W[o, j*g + c] = scale[o] * sum_m codebooks[m][codes[o, j, m]][c], spelled out.
  for (int64_t o = 0; o < t.out_features; o += 13)
    for (int64_t i = 0; i < t.in_features; ++i) {
      const int64_t j = i / 4, c = i % 4;
      double expect = 0;
      for (int m = 0; m < 2; ++m) expect += books[size_t((m * 8 + codes[size_t((o * 2 + j) * 2 + m)]) * 4 + c)];
      EXPECT_NEAR(w[size_t(o * 8 + i)], scales[size_t(o)] * expect, 1e-14);
    }
  std::vector<double> d_books(books.size(), 0.0), d_scales(scales.size(), 0.0);
  aqlm_backward(pool(), t, r.data(), d_books.data(), d_scales.data());
  EXPECT_LT(relative_error(d_books, numeric_gradient(books, loss)), kGradientTolerance);
  EXPECT_LT(relative_error(d_scales, numeric_gradient(scales, loss)), kGradientTolerance);
}

}  // namespace
}  // namespace aqlm
