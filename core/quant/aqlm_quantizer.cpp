#include "core/quant/aqlm_quantizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <span>

#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/adam.h"
#include "core/quant/aqlm_quantizer_cuda.h"
#include "core/quant/beam_search.h"
#include "core/quant/kmeans.h"
#include "core/quant/quant_random.h"
#include "core/quant/xtx_products.h"

namespace aqlm {

namespace {
constexpr uint64_t kKmeansStream = 21, kBeamStream = 22;
constexpr int64_t kRowTile = 64;
constexpr double kScaleEps = 1e-9;  // keeps the scale of an all-zero row positive

template <typename Fn>
void for_rows(ThreadPool& pool, int64_t rows, Fn&& fn) {
  const int64_t tiles = (rows + kRowTile - 1) / kRowTile;
  pool.parallel_for(size_t(tiles), [&](size_t t0, size_t t1, int) {
    for (int64_t r = int64_t(t0) * kRowTile, e = std::min(rows, int64_t(t1) * kRowTile); r < e; ++r) fn(r);
  });
}

void check_supported(const LayerProblem& p, const AqlmOptions& o) {
  const AqlmConfig& c = o.config;
  const std::string cfg = c.name();
  AQLM_CHECK(c.num_codebooks >= 1 && c.num_codebooks <= 8, p.name, ": AQLM ", cfg, ": ", c.num_codebooks,
             " codebooks; the quantizer supports 1 to 8");
  AQLM_CHECK(c.nbits >= 4 && c.nbits <= 16, p.name, ": AQLM ", cfg, ": ", c.nbits,
             " bits per codebook; the quantizer supports 4 to 16");
  AQLM_CHECK(c.group_size == 4 || c.group_size == 8 || c.group_size == 16, p.name, ": AQLM ", cfg, ": group size ",
             c.group_size, "; the quantizer supports 4, 8 and 16");
  AQLM_CHECK(p.in_features % c.group_size == 0, p.name, ": ", p.in_features,
             " input features are not a multiple of the group size ", c.group_size, " of ", cfg);
  AQLM_CHECK(o.beam_size >= 0 && o.beam_size <= 64, p.name, ": beam size ", o.beam_size, " is out of range 0..64");
  AQLM_CHECK(o.max_epochs >= 0 && o.adam_steps >= 0 && o.kmeans_iterations >= 0, p.name,
             ": epochs, Adam steps and k-means iterations must not be negative");
  AQLM_CHECK(o.relative_tolerance >= 0, p.name, ": relative tolerance ", o.relative_tolerance, " is negative");
  AQLM_CHECK(std::isfinite(o.learning_rate) && o.learning_rate > 0, p.name, ": Adam learning rate ", o.learning_rate,
             " must be positive");
  AQLM_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, p.name, ": Adam betas (", o.beta1, ", ",
             o.beta2, ") must be in [0, 1)");
}

// The layer's dense reconstruction W', its error R = (W - W') XTX and the loss, for the
// current codes, codebooks and scales.
class Reconstruction {
 public:
  Reconstruction(ThreadPool& pool, const LayerProblem& p, const std::vector<float>& xtx_f, double energy)
      : pool_(pool), p_(p), xtx_f_(xtx_f), energy_(energy), error_(p.weight.size()), error_xtx_(p.weight.size()) {}

  void refresh(const QuantizedLayer& layer) {
    const int64_t in = p_.in_features, g = layer.config.group_size, M = layer.config.num_codebooks;
    const int64_t K = layer.config.codebook_size(), J = in / g;
    for_rows(pool_, p_.out_features, [&](int64_t o) {
      const float s = layer.scales[size_t(o)];
      for (int64_t j = 0; j < J; ++j) {
        const uint16_t* code = &layer.codes[size_t((o * J + j) * M)];
        for (int64_t d = 0; d < g; ++d) {
          float sum = 0;
          for (int64_t m = 0; m < M; ++m) sum += layer.codebooks[size_t((m * K + code[m]) * g + d)];
          const size_t i = size_t(o * in + j * g + d);
          error_[i] = p_.weight[i] - s * sum;
        }
      }
    });
    xtx_product(pool_, error_.data(), p_.out_features, in, xtx_f_.data(), error_xtx_.data());
    loss_ = dot_double(pool_, error_.data(), error_xtx_.data(), error_.size());
  }
  double relative_error() const { return loss_ / energy_; }
  std::vector<float>& error_xtx() { return error_xtx_; }

 private:
  ThreadPool& pool_;
  const LayerProblem& p_;
  const std::vector<float>& xtx_f_;
  double energy_;
  std::vector<float> error_, error_xtx_;
  double loss_ = 0;
};

// Gradients of tr(E XTX E^T) / out (the reference implementation's MSE) with respect to the
// codebooks and scales, codes fixed. Each codeword sums over the places that use it, in a
// fixed order (an inverted index of the codes built once per Adam round). Writes into the
// gradient buffers the optimizer reads.
class CodebookGradient {
 public:
  CodebookGradient(ThreadPool& pool, const QuantizedLayer& layer, std::span<float> codebooks_grad,
                   std::span<float> scales_grad)
      : pool_(pool), layer_(layer), codebooks_grad_(codebooks_grad), scales_grad_(scales_grad) {
    const int64_t M = layer.config.num_codebooks, K = layer.config.codebook_size();
    const int64_t places = layer.out_features * layer.num_groups();
    offsets_.assign(size_t(M * (K + 1)), 0);
    uses_.resize(size_t(M * places));
    for (int64_t m = 0; m < M; ++m) {
      int64_t* off = &offsets_[size_t(m * (K + 1))];
      for (int64_t p = 0; p < places; ++p) ++off[layer.codes[size_t(p * M + m)] + 1];
      for (int64_t k = 0; k < K; ++k) off[k + 1] += off[k];
      std::vector<int64_t> fill(off, off + K);
      for (int64_t p = 0; p < places; ++p) uses_[size_t(m * places + fill[layer.codes[size_t(p * M + m)]]++)] = p;
    }
  }

  void compute(const std::vector<float>& error_xtx) {
    const QuantizedLayer& L = layer_;
    const int64_t g = L.config.group_size, M = L.config.num_codebooks, K = L.config.codebook_size();
    const int64_t in = L.in_features, J = L.num_groups(), places = L.out_features * J;
    const double factor = -2.0 / double(L.out_features);  // d/dW' of tr(E XTX E^T)/out, E = W - W'
    pool_.parallel_for(size_t(M * K), [&](size_t w0, size_t w1, int) {
      double acc[64];
      for (size_t w = w0; w < w1; ++w) {
        const int64_t m = int64_t(w) / K, k = int64_t(w) % K;
        const int64_t* off = &offsets_[size_t(m * (K + 1))];
        std::fill_n(acc, g, 0.0);
        for (int64_t u = off[k]; u < off[k + 1]; ++u) {
          const int64_t p = uses_[size_t(m * places + u)], o = p / J, j = p % J;
          const double s = L.scales[size_t(o)];
          const float* r = &error_xtx[size_t(o * in + j * g)];
          for (int64_t d = 0; d < g; ++d) acc[d] += s * r[d];
        }
        for (int64_t d = 0; d < g; ++d) codebooks_grad_[w * size_t(g) + size_t(d)] = float(factor * acc[d]);
      }
    }, 64);
    for_rows(pool_, L.out_features, [&](int64_t o) {
      double acc = 0;
      for (int64_t j = 0; j < J; ++j) {
        const uint16_t* code = &L.codes[size_t((o * J + j) * M)];
        for (int64_t d = 0; d < g; ++d) {
          float sum = 0;
          for (int64_t m = 0; m < M; ++m) sum += L.codebooks[size_t((m * K + code[m]) * g + d)];
          acc += double(sum) * error_xtx[size_t(o * in + j * g + d)];
        }
      }
      scales_grad_[size_t(o)] = float(factor * acc);
    });
  }

 private:
  ThreadPool& pool_;
  const QuantizedLayer& layer_;
  std::vector<int64_t> offsets_, uses_;
  std::span<float> codebooks_grad_, scales_grad_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

const char* aqlm_phase_name(AqlmPhase phase) {
  switch (phase) {
    case AqlmPhase::Initialization: return "init";
    case AqlmPhase::CodebookUpdate: return "adam";
    case AqlmPhase::BeamSearch: return "beam";
  }
  return "?";
}

void check_aqlm_options(const LayerProblem& problem, const AqlmOptions& options) { check_supported(problem, options); }

KMeansOptions aqlm_kmeans_options(const AqlmOptions& options, int64_t K, int m) {
  KMeansOptions ko;
  ko.max_iterations = options.kmeans_iterations > 0 ? options.kmeans_iterations : (K > 4096 ? 6 : 20);
  // Automatic subsample: at most 2^34 point-centroid pairs per Lloyd iteration (~1 s here).
  ko.max_points_per_centroid = options.kmeans_points_per_centroid > 0
                                   ? options.kmeans_points_per_centroid
                                   : std::max<int64_t>(4, (int64_t(1) << 34) / (K * K));
  ko.seed = QuantRandom::derive(options.seed, kKmeansStream, uint64_t(m)).next();
  return ko;
}

uint64_t aqlm_beam_seed(const AqlmOptions& options, int epoch) {
  return QuantRandom::derive(options.seed, kBeamStream, uint64_t(epoch)).next();
}

QuantizedLayer initialize_aqlm(const LayerProblem& p, const AqlmOptions& options) {
  check_supported(p, options);
  ThreadPool& pool = options.pool ? *options.pool : ThreadPool::global();
  const AqlmConfig& c = options.config;
  const int64_t out = p.out_features, in = p.in_features, g = c.group_size, M = c.num_codebooks;
  const int64_t K = c.codebook_size(), J = in / g;
  QuantizedLayer layer;
  layer.out_features = out;
  layer.in_features = in;
  layer.config = c;
  layer.scales.resize(size_t(out));
  layer.codes.resize(size_t(out * J * M));
  layer.codebooks.resize(size_t(M * K * g));

  // Residual: W / scale, as groups [out * J, g].
  std::vector<float> residual(p.weight.size());
  for_rows(pool, out, [&](int64_t o) {
    double norm = 0;
    for (int64_t i = 0; i < in; ++i) norm += double(p.weight[size_t(o * in + i)]) * p.weight[size_t(o * in + i)];
    const float s = float(std::sqrt(norm) + kScaleEps);
    layer.scales[size_t(o)] = s;
    for (int64_t i = 0; i < in; ++i) residual[size_t(o * in + i)] = p.weight[size_t(o * in + i)] / s;
  });
  for (int64_t m = 0; m < M; ++m) {
    AQLM_CHECK(!(options.cancel && options.cancel->load()), "cancelled");
    const KMeansOptions ko = aqlm_kmeans_options(options, K, int(m));
    const KMeansResult km = kmeans(pool, residual.data(), out * J, int(g), K, ko);
    std::copy(km.centroids.begin(), km.centroids.end(), layer.codebooks.begin() + m * K * g);
    pool.parallel_for(size_t(out * J), [&](size_t p0, size_t p1, int) {
      for (size_t q = p0; q < p1; ++q) {
        const uint32_t k = km.assignment[q];
        layer.codes[q * size_t(M) + size_t(m)] = uint16_t(k);
        for (int64_t d = 0; d < g; ++d) residual[q * size_t(g) + size_t(d)] -= km.centroids[size_t(k) * size_t(g) + size_t(d)];
      }
    }, 1024);
  }
  return layer;
}

AqlmResult quantize_aqlm(const LayerProblem& p, const AqlmOptions& options, const AqlmProgressFn& progress) {
  if (options.device == ComputeDevice::Cuda) return quantize_aqlm_cuda(p, options, progress);
  const auto t0 = std::chrono::steady_clock::now();
  ThreadPool& pool = options.pool ? *options.pool : ThreadPool::global();
  p.validate();
  check_supported(p, options);
  const double energy = p.reference_energy();
  AQLM_CHECK(energy > 0, p.name, ": ||W X||^2 is ", energy,
             " (an all-zero weight or input statistics): there is nothing to quantize against");
  const int beam = options.beam_size > 0 ? options.beam_size : (options.config.nbits >= 12 ? 1 : 8);
  auto report = [&](AqlmPhase phase, int epoch, int step, int steps, double rel) {
    if (progress) progress(AqlmProgress{phase, epoch, step, steps, rel, seconds_since(t0)});
  };

  AqlmResult result;
  result.layer = initialize_aqlm(p, options);
  QuantizedLayer& layer = result.layer;
  std::vector<float> xtx_f(p.xtx.size());
  std::transform(p.xtx.begin(), p.xtx.end(), xtx_f.begin(), [](double v) { return float(v); });
  Reconstruction rec(pool, p, xtx_f, energy);
  rec.refresh(layer);
  result.initial_relative_error = rec.relative_error();
  result.init_seconds = seconds_since(t0);
  report(AqlmPhase::Initialization, 0, 0, 0, rec.relative_error());

  AdamOptions ao;
  ao.learning_rate = options.learning_rate;
  ao.beta1 = options.beta1;
  ao.beta2 = options.beta2;
  Adam adam(ao);  // one optimizer for the whole run: its moments carry over epochs, as in the reference
  std::vector<float> codebooks_grad(layer.codebooks.size()), scales_grad(layer.scales.size());
  adam.add(layer.codebooks, codebooks_grad);
  adam.add(layer.scales, scales_grad);

  double previous = rec.relative_error();
  const int64_t groups = layer.num_groups();
  for (int epoch = 0; epoch < options.max_epochs; ++epoch) {
    AqlmEpochStats stats;
    auto phase_start = std::chrono::steady_clock::now();
    if (options.adam_steps > 0) {
      CodebookGradient gradient(pool, layer, codebooks_grad, scales_grad);
      for (int step = 0; step < options.adam_steps; ++step) {
        AQLM_CHECK(!(options.cancel && options.cancel->load()), "cancelled");
        report(AqlmPhase::CodebookUpdate, epoch, step, options.adam_steps, rec.relative_error());
        gradient.compute(rec.error_xtx());
        adam.step();
        rec.refresh(layer);
        AQLM_CHECK(std::isfinite(rec.relative_error()), p.name, ": the relative error became ", rec.relative_error(),
                   " at Adam step ", step, " of epoch ", epoch, " (learning rate ", options.learning_rate, " too high?)");
      }
      report(AqlmPhase::CodebookUpdate, epoch, options.adam_steps, options.adam_steps, rec.relative_error());
    }
    stats.relative_error_after_adam = rec.relative_error();
    stats.adam_seconds = seconds_since(phase_start);

    phase_start = std::chrono::steady_clock::now();
    BeamSearchOptions bo;
    bo.beam_size = beam;
    bo.seed = aqlm_beam_seed(options, epoch);
    bo.cancel = options.cancel;
    bo.pool = &pool;
    const double start_loss = rec.relative_error();
    beam_search_sweep(layer, p.xtx.data(), xtx_f.data(), rec.error_xtx(), bo,
                      [&](int64_t done, int64_t total, double change) {
                        if (done < total)  // the last report comes below, recomputed exactly
                          report(AqlmPhase::BeamSearch, epoch, int(done), int(total), start_loss + change / energy);
                      });
    rec.refresh(layer);
    stats.beam_seconds = seconds_since(phase_start);
    stats.relative_error = rec.relative_error();
    report(AqlmPhase::BeamSearch, epoch, int(groups), int(groups), rec.relative_error());
    result.epochs.push_back(stats);
    const bool converged = previous <= 0 || (previous - stats.relative_error) / previous < options.relative_tolerance;
    previous = stats.relative_error;
    if (converged) break;
  }
  result.relative_error = p.relative_error(layer.dequantize());
  result.seconds = seconds_since(t0);
  return result;
}

}  // namespace aqlm
