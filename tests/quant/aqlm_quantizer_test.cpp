// The AQLM layer quantizer on synthetic structured layers (heavy-tailed rows, correlated inputs
// with outlier channels): quality against RTN and GPTQ, the behaviour of each stage, determinism
// and the errors.
#include "core/quant/aqlm_quantizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/beam_search.h"
#include "core/quant/gptq.h"
#include "core/quant/quant_random.h"
#include "core/quant/rtn.h"
#include "core/quant/synthetic_layer.h"

namespace aqlm {
namespace {

LayerProblem layer(int64_t out, int64_t in, uint64_t seed) {
  SyntheticLayerOptions o;
  o.out_features = out;
  o.in_features = in;
  o.seed = seed;
  return make_synthetic_layer(o);
}

AqlmOptions options(const char* config, int epochs, int steps) {
  AqlmOptions o;
  o.config = AqlmConfig::parse(config);
  o.max_epochs = epochs;
  o.adam_steps = steps;
  o.relative_tolerance = 0;
  return o;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// 512x512, where the codebooks cost little: 2x8g8 is 2.28 bits per parameter and 1x8g4 2.09,
// both below GPTQ and RTN at 3 bits (3.21 and 3.15 with fp16 scales and zeros per 128).
// Measured here: 2x8g8 0.0051 and 1x8g4 0.0074 relative output error after 2 epochs of 30 Adam
// steps, GPTQ 3-bit 0.0177, RTN 3-bit 0.0428. The margins leave room for other seeds and
// platforms, not for a broken stage (k-means alone gives ~0.075 / ~0.09).
TEST(Aqlm, BeatsGptqAndRtnWithFewerBits) {
  const LayerProblem p = layer(512, 512, 11);
  GptqOptions go;
  go.bits = 3;
  go.group_size = 128;
  go.act_order = true;
  const DenseQuantResult gptq3 = quantize_gptq(p, go);
  const DenseQuantResult rtn3 = quantize_rtn(p, {3, 128});
  const double gptq_err = p.relative_error(gptq3.weight), rtn_err = p.relative_error(rtn3.weight);
  for (const char* config : {"2x8g8", "1x8g4"}) {
    const AqlmResult r = quantize_aqlm(p, options(config, 2, 30));
    std::printf("%s: %.3f bits, relative error %.5f (GPTQ 3-bit %.3f bits %.5f, RTN 3-bit %.5f)\n", config,
                r.layer.bits_per_parameter(), r.relative_error, gptq3.bits_per_parameter, gptq_err, rtn_err);
    EXPECT_LT(r.layer.bits_per_parameter(), gptq3.bits_per_parameter);
    EXPECT_LT(r.layer.bits_per_parameter(), rtn3.bits_per_parameter);
    const double margin = std::string(config) == "2x8g8" ? 0.6 : 0.8;
    EXPECT_LT(r.relative_error, margin * gptq_err) << config;
    EXPECT_LT(r.relative_error, 0.3 * rtn_err) << config;
    // The returned layer is what was measured: recomputed from its dequantized weight.
    EXPECT_DOUBLE_EQ(r.relative_error, p.relative_error(r.layer.dequantize()));
  }
}

// Loss per Adam step: Adam with beta1 = 0 and lr 1e-4 takes small steps on a convex
// quadratic; between consecutive steps the loss may rise only by float rounding of the
// GEMM-based evaluation (~1e-6 relative), so 1e-4 relative would catch a wrong gradient
// sign or scale. Over epochs (Adam + beam search) it must fall.
TEST(Aqlm, LossFallsPerStepAndPerEpoch) {
  const LayerProblem p = layer(64, 128, 5);
  std::vector<AqlmProgress> events;
  const AqlmResult r = quantize_aqlm(p, options("2x8g8", 4, 40), [&](const AqlmProgress& e) { events.push_back(e); });
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().phase, AqlmPhase::Initialization);
  EXPECT_DOUBLE_EQ(events.front().relative_error, r.initial_relative_error);
  int adam_events = 0;
  for (size_t i = 1; i < events.size(); ++i) {
    const AqlmProgress& a = events[i - 1];
    const AqlmProgress& b = events[i];
    EXPECT_GE(b.seconds, a.seconds);
    if (b.phase == AqlmPhase::CodebookUpdate) ++adam_events;
    if (b.phase == AqlmPhase::CodebookUpdate && a.phase == AqlmPhase::CodebookUpdate && b.step == a.step + 1)
      EXPECT_LE(b.relative_error, a.relative_error * (1 + 1e-4)) << "epoch " << b.epoch << " step " << b.step;
  }
  EXPECT_EQ(adam_events, 4 * 41);  // steps 0..40 of each of the 4 epochs
  ASSERT_EQ(r.epochs.size(), 4u);
  double previous = r.initial_relative_error;
  for (const AqlmEpochStats& e : r.epochs) {
    EXPECT_LT(e.relative_error_after_adam, previous);
    EXPECT_LE(e.relative_error, e.relative_error_after_adam);  // the sweep never raises it
    previous = e.relative_error;
  }
  EXPECT_LT(r.relative_error, 0.5 * r.initial_relative_error);
  EXPECT_EQ(events.back().phase, AqlmPhase::BeamSearch);
  EXPECT_EQ(events.back().step, events.back().steps);
}

TEST(Aqlm, StopsWhenAnEpochImprovesByLessThanTheTolerance) {
  const LayerProblem p = layer(64, 128, 6);
  AqlmOptions o = options("1x8g8", 50, 20);
  o.relative_tolerance = 0.2;  // stops after a few epochs
  const AqlmResult r = quantize_aqlm(p, o);
  ASSERT_GE(r.epochs.size(), 2u);
  EXPECT_LT(r.epochs.size(), 50u);
  const double last = r.epochs.back().relative_error, before = r.epochs[r.epochs.size() - 2].relative_error;
  EXPECT_LT((before - last) / before, 0.2);
  for (size_t e = 0; e + 1 < r.epochs.size(); ++e) {
    const double prev = e == 0 ? r.initial_relative_error : r.epochs[e - 1].relative_error;
    EXPECT_GE((prev - r.epochs[e].relative_error) / prev, 0.2) << "epoch " << e;
  }
}

// The sweep re-chooses codes for the objective it is given: starting from the k-means codes
// (and after some Adam), the exact float64 error never rises, and the change it predicts is
// the change that happens. 1e-9 relative: the sweep accepts a code only when psi, recomputed
// in double, falls; what remains is the float rounding of the residual R (~1e-7 of one row's
// share of the loss), far below that.
TEST(BeamSearch, NeverRaisesTheObjectiveAndPredictsItsChange) {
  const LayerProblem p = layer(64, 128, 7);
  std::vector<float> xtx_f(p.xtx.begin(), p.xtx.end());
  for (const char* config : {"1x8g8", "2x6g8", "3x4g4"}) {
    for (int beam : {1, 4}) {
      AqlmOptions o = options(config, 0, 0);
      QuantizedLayer q = initialize_aqlm(p, o);
      const double energy = p.reference_energy();
      double before = p.relative_error(q.dequantize());
      for (int sweep = 0; sweep < 3; ++sweep) {
        std::vector<float> w = q.dequantize(), r(w.size());
        for (size_t i = 0; i < w.size(); ++i) w[i] = p.weight[i] - w[i];
        // R = (W - W') XTX in float.
        for (int64_t row = 0; row < p.out_features; ++row)
          for (int64_t c = 0; c < p.in_features; ++c) {
            double s = 0;
            for (int64_t k = 0; k < p.in_features; ++k) s += double(w[size_t(row * 128 + k)]) * p.xtx[size_t(k * 128 + c)];
            r[size_t(row * 128 + c)] = float(s);
          }
        BeamSearchOptions bo;
        bo.beam_size = beam;
        bo.seed = uint64_t(sweep);
        const double predicted = beam_search_sweep(q, p.xtx.data(), xtx_f.data(), r, bo);
        const double after = p.relative_error(q.dequantize());
        EXPECT_LE(after, before * (1 + 1e-9)) << config << " beam " << beam << " sweep " << sweep;
        EXPECT_LE(predicted, 0.0);
        EXPECT_NEAR(after - before, predicted / energy, 1e-3 * before) << config << " beam " << beam;
        if (sweep == 0) EXPECT_LT(after, 0.9 * before) << config << ": the first sweep after k-means must help";
        before = after;
      }
    }
  }
}

// Residual k-means against codes drawn at random for the same codebooks and scales.
TEST(Aqlm, KmeansInitializationBeatsRandomCodes) {
  const LayerProblem p = layer(64, 128, 8);
  for (const char* config : {"1x8g8", "2x8g8", "2x4g4"}) {
    const QuantizedLayer init = initialize_aqlm(p, options(config, 0, 0));
    QuantizedLayer random = init;
    QuantRandom rng(1);
    for (uint16_t& c : random.codes) c = uint16_t(rng.below(uint64_t(init.config.codebook_size())));
    const double init_err = p.relative_error(init.dequantize()), random_err = p.relative_error(random.dequantize());
    EXPECT_LT(init_err, 0.5 * random_err) << config << ": k-means " << init_err << ", random codes " << random_err;
    // Scales start at the row norms.
    for (int64_t o = 0; o < p.out_features; ++o) {
      double n = 0;
      for (int64_t c = 0; c < p.in_features; ++c) n += double(p.weight[size_t(o * 128 + c)]) * p.weight[size_t(o * 128 + c)];
      EXPECT_NEAR(init.scales[size_t(o)], std::sqrt(n), 1e-6 * std::sqrt(n));
    }
  }
}

// 2^16 codewords (the 1x16 path: beam 1, the nearest-candidate kernel over 65,536 words) on a
// layer with fewer groups (32 x 64 / 8 = 256) than codewords: k-means gives every group its own
// centroid, so the error starts at float rounding. Adam (beta1 = 0) then moves every value by
// about lr per step whatever the gradient, ~5e-4 over 5 steps on codewords of ~0.1: the error
// may rise to ~(5e-3)^2 at most, and must stay far below any real quantization error.
TEST(Aqlm, SixteenBitCodebooksWithFewerGroupsThanCodewords) {
  const LayerProblem p = layer(32, 64, 12);
  const AqlmResult r = quantize_aqlm(p, options("1x16g8", 1, 5));
  EXPECT_LT(r.initial_relative_error, 1e-9);
  EXPECT_LT(r.relative_error, 1e-5);
  for (uint16_t c : r.layer.codes) EXPECT_LT(c, 65536);
}

// Groups of 16 (the widest the kernels take) and of 4: the error falls over the epochs.
TEST(Aqlm, GroupsOfSixteenAndFour) {
  const LayerProblem p = layer(64, 128, 13);
  for (const char* config : {"1x8g16", "2x8g16", "1x6g4"}) {
    const AqlmResult r = quantize_aqlm(p, options(config, 3, 20));
    ASSERT_EQ(r.epochs.size(), 3u);
    EXPECT_LT(r.epochs[0].relative_error, r.initial_relative_error) << config;
    EXPECT_LT(r.epochs[2].relative_error, r.epochs[0].relative_error) << config;
  }
}

TEST(Aqlm, BitIdenticalWhateverTheThreadCountAndDifferentPerSeed) {
  const LayerProblem p = layer(96, 64, 9);  // 96 rows: two row tiles, one short
  ThreadPool one(1), three(3);
  AqlmOptions o = options("2x6g4", 2, 10);
  o.pool = &one;
  const AqlmResult a = quantize_aqlm(p, o);
  o.pool = &three;
  const AqlmResult b = quantize_aqlm(p, o);
  EXPECT_EQ(a.layer.codes, b.layer.codes);
  EXPECT_EQ(a.layer.codebooks, b.layer.codebooks);
  EXPECT_EQ(a.layer.scales, b.layer.scales);
  EXPECT_EQ(a.relative_error, b.relative_error);
  o.seed = 1;
  const AqlmResult c = quantize_aqlm(p, o);
  EXPECT_NE(a.layer.codes, c.layer.codes);
}

TEST(Aqlm, ErrorsNameTheLayerAndTheReason) {
  LayerProblem p = layer(8, 36, 1);
  p.name = "model.layers.0.mlp.down_proj";
  EXPECT_EQ(error_of([&] { quantize_aqlm(p, options("1x8g8", 1, 1)); }),
            "model.layers.0.mlp.down_proj: 36 input features are not a multiple of the group size 8 of 1x8g8");
  EXPECT_EQ(error_of([&] { quantize_aqlm(p, options("1x8g5", 1, 1)); }),
            "model.layers.0.mlp.down_proj: AQLM 1x8g5: group size 5; the quantizer supports 4, 8 and 16");
  EXPECT_EQ(error_of([&] { quantize_aqlm(p, options("1x3g4", 1, 1)); }),
            "model.layers.0.mlp.down_proj: AQLM 1x3g4: 3 bits per codebook; the quantizer supports 4 to 16");
  LayerProblem nan = p;
  nan.weight[2 * 36 + 5] = NAN;
  EXPECT_EQ(error_of([&] { quantize_aqlm(nan, options("1x4g4", 1, 1)); }),
            "model.layers.0.mlp.down_proj: weight[2, 5] is nan; the weight must be finite");
  LayerProblem inf = p;
  inf.xtx[3] = INFINITY;
  EXPECT_EQ(error_of([&] { quantize_aqlm(inf, options("1x4g4", 1, 1)); }),
            "model.layers.0.mlp.down_proj: XTX[0, 3] is inf; the input statistics must be finite");
  LayerProblem zero = p;
  std::fill(zero.weight.begin(), zero.weight.end(), 0.0f);
  EXPECT_NE(error_of([&] { quantize_aqlm(zero, options("1x4g4", 1, 1)); }).find("||W X||^2 is 0"), std::string::npos);
  LayerProblem short_xtx = p;
  short_xtx.xtx.pop_back();
  EXPECT_NE(error_of([&] { quantize_aqlm(short_xtx, options("1x4g4", 1, 1)); }).find("XTX has 1295 values"),
            std::string::npos);
  AqlmOptions bad = options("1x4g4", 1, 1);
  bad.beam_size = -1;
  EXPECT_THROW(quantize_aqlm(p, bad), Error);
  bad = options("1x4g4", 1, 1);
  bad.learning_rate = 0;
  EXPECT_EQ(error_of([&] { quantize_aqlm(p, bad); }),
            "model.layers.0.mlp.down_proj: Adam learning rate 0 must be positive");
}

TEST(Aqlm, CancelStopsTheRun) {
  const LayerProblem p = layer(64, 128, 2);
  std::atomic<bool> cancel{false};
  AqlmOptions o = options("1x8g8", 5, 20);
  o.cancel = &cancel;
  int events = 0;
  EXPECT_EQ(error_of([&] {
              quantize_aqlm(p, o, [&](const AqlmProgress&) {
                if (++events == 3) cancel = true;
              });
            }),
            "cancelled");
  EXPECT_LT(events, 10);
}

}  // namespace
}  // namespace aqlm
