// The AQLM layer quantizer on one CUDA GPU (see aqlm_quantizer_cuda.h). The host code here follows
// aqlm_quantizer.cpp, kmeans.cpp and beam_search.cpp step for step (same seeds, same stopping
// rule, same progress reports); the loops over rows and codewords are the kernels of
// kernels/cuda/quant_layer_cuda.h and quant_search_cuda.h.
#include "core/quant/aqlm_quantizer_cuda.h"

#include "core/common/error.h"

#ifdef AQLM_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/quant/beam_search.h"
#include "core/quant/quant_cuda_util.h"
#include "core/quant/quant_random.h"
#include "kernels/cuda/quant_cuda_common.h"
#include "kernels/cuda/quant_layer_cuda.h"
#include "kernels/cuda/quant_search_cuda.h"

namespace aqlm {

namespace {

using cuda::DeviceArray;
using Clock = std::chrono::steady_clock;

// beam_search.cpp's random streams (group and codebook order): the GPU visits the groups and
// codebooks in the CPU's order (the GPU-vs-CPU tests fail if these drift apart).
constexpr uint64_t kGroupOrderStream = 11, kCodebookOrderStream = 12;
constexpr double kScaleEps = 1e-9;           // aqlm_quantizer.cpp's: keeps an all-zero row's scale positive
constexpr int64_t kErrorRowChunk = 1024;     // rows per float64 product of the energy / error

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The device state every stage shares: one cuBLAS handle and reusable scratch.
struct GpuContext {
  cuda::QuantBlas blas;
  cuda::SearchScratch search;
  cuda::SortScratch sort;
  DeviceArray<double> partials{cuda::kDotPartials, "dot-product partial sums"};
  DeviceArray<double> scalar{1, "a scalar result"};

  double read_scalar() {
    double v = 0;
    scalar.download(&v, 1);
    return v;
  }
  // tr(A XTX A^T) in double, A = a (float) or a - b (their float difference), in row chunks.
  double trace_form(const float* a, const float* b, int64_t rows, int64_t in, const double* xtx) {
    const int64_t chunk = std::min(rows, kErrorRowChunk);
    DeviceArray<double> ad(size_t(chunk * in), "a float64 copy of the weight"), prod(size_t(chunk * in), "a float64 product");
    double total = 0;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      if (b)
        cuda::difference_to_double(a + r0 * in, b + r0 * in, size_t(n * in), ad.data());
      else
        cuda::float_to_double(a + r0 * in, size_t(n * in), ad.data());
      blas.dgemm(false, false, n, in, in, 1.0, ad.data(), in, xtx, in, 0.0, prod.data(), in);
      cuda::dot_double(prod.data(), ad.data(), size_t(n * in), partials.data(), scalar.data());
      total += read_scalar();
    }
    return total;
  }
};

struct DeviceKmeans {
  DeviceArray<float> centroids;       // [k, g]
  DeviceArray<uint32_t> assignment;   // [n]
  int iterations = 0;
};

// kmeans.cpp on the device: the same sample, start and Lloyd steps (members summed in order).
DeviceKmeans kmeans_device(GpuContext& ctx, const float* points, int64_t n, int g, int64_t k, const KMeansOptions& o) {
  AQLM_CHECK(n > 0 && k > 0 && g > 0, "k-means of ", n, " points into ", k, " clusters");
  AQLM_CHECK(o.max_iterations >= 0, "k-means: max iterations ", o.max_iterations, " is negative");
  QuantRandom rng(o.seed);
  const std::vector<int64_t> order = rng.permutation(n);
  int64_t sample = n;
  if (o.max_points_per_centroid > 0) sample = std::min(n, std::max(k, o.max_points_per_centroid * k));
  DeviceArray<int64_t> index(size_t(std::max(sample, k)), "k-means sample indices");
  index.upload(order.data(), size_t(sample));
  DeviceArray<float> data(size_t(sample * g), "the k-means sample");
  cuda::gather_rows(points, index.data(), sample, g, data.data());

  DeviceKmeans r;
  std::vector<int64_t> start(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) start[size_t(c)] = c < sample ? c : int64_t(rng.below(uint64_t(sample)));
  index.upload(start.data(), size_t(k));
  r.centroids.resize(size_t(k * g), "k-means centroids");
  cuda::gather_rows(data.data(), index.data(), k, g, r.centroids.data());

  DeviceArray<uint32_t> assign(size_t(sample), "k-means assignments"), next(size_t(sample), "k-means assignments");
  DeviceArray<uint32_t> sorted_keys(size_t(sample), "k-means sorted assignments"), members(size_t(sample), "k-means members");
  DeviceArray<uint32_t> identity(size_t(sample), "k-means member indices");
  DeviceArray<int64_t> offsets(size_t(k + 1), "k-means cluster offsets");
  DeviceArray<float> norms(size_t(k), "centroid norms"), scores(size_t(std::max(sample, n)), "k-means distances");
  DeviceArray<int> changed(1, "k-means change flag");
  assign.poison();  // UINT32_MAX: no assignment yet
  cuda::iota(identity.data(), sample);
  const cuda::CandidatesView set{g, k, r.centroids.data(), norms.data()};
  for (int it = 0; it < o.max_iterations; ++it) {
    cuda::centroid_norms(r.centroids.data(), k, g, norms.data());
    cuda::search_nearest_cuda(set, data.data(), sample, next.data(), scores.data(), ctx.search);
    cuda::any_difference(next.data(), assign.data(), sample, changed.data());
    int flag = 0;
    changed.download(&flag, 1);
    std::swap(assign, next);
    if (!flag) break;
    r.iterations = it + 1;
    cuda::sort_pairs(assign.data(), sorted_keys.data(), identity.data(), members.data(), sample, key_bits(k), ctx.sort);
    cuda::segment_offsets(sorted_keys.data(), sample, k, offsets.data());
    cuda::centroid_means(data.data(), members.data(), offsets.data(), k, g, r.centroids.data());
  }
  cuda::centroid_norms(r.centroids.data(), k, g, norms.data());
  r.assignment.resize(size_t(n), "k-means assignments");
  cuda::search_nearest_cuda(set, points, n, r.assignment.data(), scores.data(), ctx.search);
  return r;
}

// The layer on the device and the reconstruction error of its current parameters.
struct DeviceLayer {
  cuda::LayerDims dims;
  DeviceArray<float> weight, xtx_f, error, error_xtx;  // W, float XTX, E = W - W', R = E XTX
  DeviceArray<double> xtx, diagonal;                    // float64 XTX and its g x g diagonal blocks
  DeviceArray<uint16_t> codes;
  DeviceArray<float> codebooks, scales;
  double energy = 0, loss = 0;

  DeviceLayer(const LayerProblem& p, const AqlmConfig& c) {
    dims.out = p.out_features;
    dims.in = p.in_features;
    dims.g = c.group_size;
    dims.M = c.num_codebooks;
    dims.K = c.codebook_size();
    const int64_t out = dims.out, in = dims.in, J = dims.J(), g = dims.g;
    weight.resize(size_t(out * in), "the layer's weight");
    weight.upload(p.weight);
    xtx.resize(size_t(in * in), "XTX (float64)");
    xtx.upload(p.xtx);
    xtx_f.resize(size_t(in * in), "XTX (float32)");
    cuda::double_to_float(xtx.data(), xtx.size(), xtx_f.data());
    std::vector<double> blocks(static_cast<size_t>(J * g * g));
    for (int64_t j = 0; j < J; ++j)
      for (int64_t r = 0; r < g; ++r)
        for (int64_t q = 0; q < g; ++q) blocks[size_t((j * g + r) * g + q)] = p.xtx[size_t((j * g + r) * in + j * g + q)];
    diagonal.resize(blocks.size(), "XTX's diagonal blocks");
    diagonal.upload(blocks);
    error.resize(size_t(out * in), "the reconstruction error");
    error_xtx.resize(size_t(out * in), "the error times XTX");
    codes.resize(size_t(out * J * dims.M), "the codes");
    codebooks.resize(size_t(dims.M * dims.K * g), "the codebooks");
    scales.resize(size_t(out), "the scales");
  }

  // E, R = E XTX and the loss tr(E XTX E^T) in double. R in fp32 (the CPU Reconstruction's
  // arithmetic) wherever it is kept; the Adam steps but the last of a round use TF32 tensor cores
  // (R's error ~5e-4 relative moves a gradient Adam normalises anyway, ~8x faster).
  void refresh(GpuContext& ctx, cuda::GemmPrecision precision = cuda::GemmPrecision::Fp32) {
    cuda::dequantize_error(dims, weight.data(), codes.data(), codebooks.data(), scales.data(), error.data());
    ctx.blas.gemm(false, false, dims.out, dims.in, dims.in, 1.0f, error.data(), dims.in, xtx_f.data(), dims.in, 0.0f,
                  error_xtx.data(), dims.in, precision);
    cuda::dot_double(error.data(), error_xtx.data(), error.size(), ctx.partials.data(), ctx.scalar.data());
    loss = ctx.read_scalar();
  }
  double relative_error() const { return loss / energy; }

  QuantizedLayer to_host(const AqlmConfig& c) const {
    QuantizedLayer q;
    q.out_features = dims.out;
    q.in_features = dims.in;
    q.config = c;
    q.codes = codes.to_host();
    q.codebooks = codebooks.to_host();
    q.scales = scales.to_host();
    return q;
  }
};

// Bytes the whole run keeps on the device, plus the largest temporary (checked against free memory).
size_t planned_bytes(const LayerProblem& p, const AqlmConfig& c, int beam) {
  const size_t out = size_t(p.out_features), in = size_t(p.in_features), g = size_t(c.group_size);
  const size_t M = size_t(c.num_codebooks), K = size_t(c.codebook_size()), J = in / g, b = size_t(beam);
  const size_t layer = 4 * out * in * 5 + 8 * in * in + 4 * in * in * 2 + 8 * in * g + 2 * out * J * M + 4 * M * K * g * 5;
  const size_t index = 16 * M * out * J;                             // inverted code index
  const size_t beam_state = out * b * (4 * M + 8 * g + 16 + 8 * b) + out * (8 * g + 4 * g + 9) + 4 * K;
  const size_t kmeans = 8 * out * in + 32 * out * J;                 // residual, sample, assignments
  const size_t trace = 16 * std::min<size_t>(out, size_t(kErrorRowChunk)) * in;
  return layer + std::max({index + beam_state, kmeans, trace}) + (64u << 20);
}

void initialize_device(GpuContext& ctx, DeviceLayer& L, const AqlmOptions& options) {
  const cuda::LayerDims& d = L.dims;
  const int64_t n = d.out * d.J();
  DeviceArray<float> residual(size_t(d.out * d.in), "the k-means residual");
  cuda::row_norm_scales(L.weight.data(), d.out, d.in, kScaleEps, L.scales.data(), residual.data());
  for (int m = 0; m < d.M; ++m) {
    AQLM_CHECK(!(options.cancel && options.cancel->load()), "cancelled");
    const KMeansOptions ko = aqlm_kmeans_options(options, d.K, m);
    const DeviceKmeans km = kmeans_device(ctx, residual.data(), n, d.g, d.K, ko);
    cuda::check(cudaMemcpy(L.codebooks.data() + m * d.K * d.g, km.centroids.data(), km.centroids.bytes(),
                           cudaMemcpyDeviceToDevice),
                "copying a codebook on the GPU");
    cuda::assign_codes(km.assignment.data(), km.centroids.data(), n, d.g, d.M, m, L.codes.data(), residual.data());
  }
}

// beam_search.cpp's sweep; returns the predicted change of tr(E XTX E^T).
double beam_sweep_device(GpuContext& ctx, DeviceLayer& L, int beam_size, uint64_t seed,
                         const std::atomic<bool>* cancel, const BeamSearchProgress& progress) {
  const cuda::LayerDims& d = L.dims;
  const int64_t out = d.out, in = d.in, J = d.J(), K = d.K;
  const int g = d.g, M = d.M;
  const int beam = int(std::min<int64_t>(beam_size, std::max<int64_t>(1, K)));
  const std::vector<int64_t> order = QuantRandom::derive(seed, kGroupOrderStream).permutation(J);
  std::vector<int64_t> column(static_cast<size_t>(in));
  for (int64_t a = 0; a < J; ++a)
    for (int c = 0; c < g; ++c) column[size_t(a * g + c)] = order[size_t(a)] * g + c;
  DeviceArray<int64_t> column_d(column.size(), "the visiting order");
  column_d.upload(column);
  DeviceArray<float> xp(size_t(in * in), "the permuted XTX"), rp(size_t(out * in), "the permuted error");
  cuda::permute_square(L.xtx_f.data(), column_d.data(), in, xp.data());
  cuda::permute_columns(L.error_xtx.data(), column_d.data(), out, in, rp.data());

  const size_t hyps_max = size_t(out) * size_t(beam);
  DeviceArray<uint16_t> hyp_codes(hyps_max * M, "beam hypotheses"), next_codes(hyps_max * M, "beam hypotheses");
  DeviceArray<float> hyp_v(hyps_max * g, "beam hypotheses"), next_v(hyps_max * g, "beam hypotheses");
  DeviceArray<double> hyp_psi(hyps_max, "beam hypotheses"), next_psi(hyps_max, "beam hypotheses");
  DeviceArray<double> u(size_t(out * g), "beam linear terms"), query_const(hyps_max, "beam query constants");
  DeviceArray<unsigned char> active(size_t(out), "beam row flags");
  DeviceArray<float> queries(hyps_max * g, "beam queries"), bias(size_t(K), "codeword norms");
  DeviceArray<uint32_t> found(hyps_max * beam, "beam candidates");
  DeviceArray<float> found_score(hyps_max * beam, "beam candidates"), delta(size_t(out * g), "code changes");
  DeviceArray<double> row_change(size_t(out), "row changes"), group_change(size_t(J), "group changes");

  cuda::BeamBuffers b;
  b.dims = d;
  b.beam = beam;
  b.codes = L.codes.data();
  b.codebooks = L.codebooks.data();
  b.scales = L.scales.data();
  b.diagonal = L.diagonal.data();
  b.r_permuted = rp.data();
  b.hyp_codes = hyp_codes.data();
  b.hyp_v = hyp_v.data();
  b.hyp_psi = hyp_psi.data();
  b.next_codes = next_codes.data();
  b.next_v = next_v.data();
  b.next_psi = next_psi.data();
  b.u = u.data();
  b.row_active = active.data();
  b.queries = queries.data();
  b.query_const = query_const.data();
  b.found = found.data();
  b.found_score = found_score.data();
  b.bias = bias.data();
  b.delta = delta.data();
  b.row_change = row_change.data();

  const int kk = int(std::min<int64_t>(beam, K));
  const int64_t report_every = std::max<int64_t>(1, J / 64);
  std::vector<double> changes;
  const auto predicted_until = [&](int64_t groups) {
    changes.resize(size_t(groups));
    group_change.download(changes.data(), size_t(groups));
    double total = 0;
    for (double c : changes) total += c;  // group order, as the CPU adds them
    return total;
  };
  for (int64_t a = 0; a < J; ++a) {
    AQLM_CHECK(!(cancel && cancel->load()), "cancelled");
    const int64_t j = order[size_t(a)];
    const std::vector<int64_t> codebook_order = QuantRandom::derive(seed, kCodebookOrderStream, uint64_t(a)).permutation(M);
    cuda::beam_start(b, a, j);
    int hyps = 1;
    for (int t = 0; t < M; ++t) {
      const int m = int(codebook_order[size_t(t)]);
      cuda::beam_bias(b, m, j);
      cuda::beam_queries(b, m, j, hyps);
      const cuda::CandidatesView set{g, K, L.codebooks.data() + int64_t(m) * K * g, bias.data()};
      if (kk == 1)
        cuda::search_nearest_cuda(set, queries.data(), out * hyps, found.data(), found_score.data(), ctx.search);
      else
        cuda::search_top_k_cuda(set, queries.data(), out * hyps, kk, found.data(), found_score.data(), ctx.search);
      const int next_hyps = int(std::min<int64_t>(beam, int64_t(hyps) * kk));
      cuda::beam_select(b, m, hyps, kk, next_hyps);
      std::swap(b.hyp_codes, b.next_codes);
      std::swap(b.hyp_v, b.next_v);
      std::swap(b.hyp_psi, b.next_psi);
      hyps = next_hyps;
    }
    cuda::beam_commit(b, j);
    cuda::sum_double(row_change.data(), out, group_change.data() + a);
    // The change of W' moves R = (W - W') XTX for the groups still to visit.
    const int64_t c0 = (a + 1) * g, width = in - c0;
    if (width > 0)
      ctx.blas.gemm(false, false, out, width, g, -1.0f, delta.data(), g, xp.data() + a * g * in + c0, in, 1.0f,
                    rp.data() + c0, in, cuda::GemmPrecision::Fp32);
    if (progress && ((a + 1) % report_every == 0 || a + 1 == J)) progress(a + 1, J, predicted_until(a + 1));
  }
  return predicted_until(J);
}

void check_shape(const LayerProblem& p) {
  p.validate();
  AQLM_CHECK(p.in_features <= 65535 && p.out_features <= 65535,
             p.name, ": [", p.out_features, ", ", p.in_features, "] is larger than the GPU quantizer supports");
}

}  // namespace

AqlmResult quantize_aqlm_cuda(const LayerProblem& p, const AqlmOptions& options, const AqlmProgressFn& progress) {
  const auto t0 = Clock::now();
  check_shape(p);
  check_aqlm_options(p, options);
  require_cuda_quantization(p.name + ": AQLM on the GPU");
  const AqlmConfig& c = options.config;
  const int beam = options.beam_size > 0 ? options.beam_size : (c.nbits >= 12 ? 1 : 8);
  cuda::require_device_memory(planned_bytes(p, c, beam), str(p.name, ": quantizing [", p.out_features, ", ",
                                                             p.in_features, "] with AQLM ", c.name(), " on the GPU"));
  auto report = [&](AqlmPhase phase, int epoch, int step, int steps, double rel) {
    if (progress) progress(AqlmProgress{phase, epoch, step, steps, rel, seconds_since(t0)});
  };

  GpuContext ctx;
  DeviceLayer L(p, c);
  L.energy = ctx.trace_form(L.weight.data(), nullptr, L.dims.out, L.dims.in, L.xtx.data());
  AQLM_CHECK(L.energy > 0, p.name, ": ||W X||^2 is ", L.energy,
             " (an all-zero weight or input statistics): there is nothing to quantize against");

  AqlmResult result;
  initialize_device(ctx, L, options);
  L.refresh(ctx);
  result.initial_relative_error = L.relative_error();
  result.init_seconds = seconds_since(t0);
  report(AqlmPhase::Initialization, 0, 0, 0, L.relative_error());

  AdamOptions adam_options;  // adam.h's eps, as the CPU quantizer
  adam_options.learning_rate = options.learning_rate;
  adam_options.beta1 = options.beta1;
  adam_options.beta2 = options.beta2;
  CudaAdam adam(adam_options);
  DeviceArray<float> codebooks_grad(L.codebooks.size(), "codebook gradients"), scales_grad(L.scales.size(), "scale gradients");
  adam.add(L.codebooks.data(), codebooks_grad.data(), L.codebooks.size());
  adam.add(L.scales.data(), scales_grad.data(), L.scales.size());
  const double factor = -2.0 / double(L.dims.out);  // d/dW' of tr(E XTX E^T) / out, E = W - W'

  double previous = L.relative_error();
  const int64_t groups = L.dims.J();
  for (int epoch = 0; epoch < options.max_epochs; ++epoch) {
    AqlmEpochStats stats;
    auto phase_start = Clock::now();
    if (options.adam_steps > 0) {
      CudaCodeIndex index;
      index.build(L.dims, L.codes.data(), ctx.sort);
      for (int step = 0; step < options.adam_steps; ++step) {
        AQLM_CHECK(!(options.cancel && options.cancel->load()), "cancelled");
        report(AqlmPhase::CodebookUpdate, epoch, step, options.adam_steps, L.relative_error());
        cuda::codebook_gradient(L.dims, index.places.data(), index.offsets.data(), L.scales.data(), L.error_xtx.data(),
                                factor, codebooks_grad.data());
        cuda::scale_gradient(L.dims, L.codes.data(), L.codebooks.data(), L.error_xtx.data(), factor, scales_grad.data());
        adam.step();
        L.refresh(ctx, step + 1 < options.adam_steps ? cuda::GemmPrecision::Tf32 : cuda::GemmPrecision::Fp32);
        AQLM_CHECK(std::isfinite(L.relative_error()), p.name, ": the relative error became ", L.relative_error(),
                   " at Adam step ", step, " of epoch ", epoch, " (learning rate ", options.learning_rate, " too high?)");
      }
      report(AqlmPhase::CodebookUpdate, epoch, options.adam_steps, options.adam_steps, L.relative_error());
    }
    stats.relative_error_after_adam = L.relative_error();
    stats.adam_seconds = seconds_since(phase_start);

    phase_start = Clock::now();
    const double start_loss = L.relative_error();
    const uint64_t seed = aqlm_beam_seed(options, epoch);
    beam_sweep_device(ctx, L, beam, seed, options.cancel, [&](int64_t done, int64_t total, double change) {
      if (done < total) report(AqlmPhase::BeamSearch, epoch, int(done), int(total), start_loss + change / L.energy);
    });
    L.refresh(ctx);
    stats.beam_seconds = seconds_since(phase_start);
    stats.relative_error = L.relative_error();
    report(AqlmPhase::BeamSearch, epoch, int(groups), int(groups), L.relative_error());
    result.epochs.push_back(stats);
    const bool converged = previous <= 0 || (previous - stats.relative_error) / previous < options.relative_tolerance;
    previous = stats.relative_error;
    if (converged) break;
  }
  // The returned layer's error in float64, from its dequantized float weight as the CPU measures it.
  DeviceArray<float> dequantized(L.weight.size(), "the dequantized weight");
  cuda::dequantize_layer(L.dims, L.codes.data(), L.codebooks.data(), L.scales.data(), dequantized.data());
  result.relative_error =
      ctx.trace_form(dequantized.data(), L.weight.data(), L.dims.out, L.dims.in, L.xtx.data()) / L.energy;
  result.layer = L.to_host(c);
  result.seconds = seconds_since(t0);
  return result;
}

double relative_error_cuda(const LayerProblem& p, const std::vector<float>& reconstruction) {
  AQLM_CHECK(reconstruction.size() == p.weight.size(), p.name, ": reconstruction has ", reconstruction.size(),
             " values, expected ", p.weight.size());
  AQLM_CHECK(int64_t(p.xtx.size()) == p.in_features * p.in_features, p.name, ": XTX has ", p.xtx.size(),
             " values, expected ", p.in_features, " x ", p.in_features);
  require_cuda_quantization(p.name + ": relative error on the GPU");
  GpuContext ctx;
  DeviceArray<float> w(p.weight.size(), "the layer's weight"), r(p.weight.size(), "the reconstruction");
  DeviceArray<double> xtx(p.xtx.size(), "XTX (float64)");
  w.upload(p.weight);
  r.upload(reconstruction);
  xtx.upload(p.xtx);
  const double energy = ctx.trace_form(w.data(), nullptr, p.out_features, p.in_features, xtx.data());
  AQLM_CHECK(energy > 0, p.name, ": ||W X||^2 is ", energy, ", so the relative error is undefined");
  return ctx.trace_form(r.data(), w.data(), p.out_features, p.in_features, xtx.data()) / energy;
}

QuantizedLayer initialize_aqlm_cuda(const LayerProblem& p, const AqlmOptions& options) {
  check_shape(p);
  check_aqlm_options(p, options);
  require_cuda_quantization(p.name + ": AQLM on the GPU");
  GpuContext ctx;
  DeviceLayer L(p, options.config);
  initialize_device(ctx, L, options);
  return L.to_host(options.config);
}

KMeansResult kmeans_cuda(const float* points, int64_t n, int g, int64_t k, const KMeansOptions& options) {
  require_cuda_quantization("k-means on the GPU");
  GpuContext ctx;
  DeviceArray<float> p(size_t(n * g), "k-means points");
  p.upload(points, size_t(n * g));
  const DeviceKmeans km = kmeans_device(ctx, p.data(), n, g, k, options);
  KMeansResult r;
  r.centroids = km.centroids.to_host();
  r.assignment = km.assignment.to_host();
  r.iterations = km.iterations;
  return r;
}

namespace {
struct HostSearch {
  DeviceArray<float> candidates, bias, queries;
  cuda::SearchScratch scratch;
  cuda::CandidatesView set;
  HostSearch(int g, int64_t count, const float* c, const float* b, const float* q, int64_t n)
      : candidates(size_t(count * g), "search candidates"), bias(size_t(count), "search biases"),
        queries(size_t(std::max<int64_t>(n, 1) * g), "search queries") {
    require_cuda_quantization("candidate search on the GPU");
    candidates.upload(c, size_t(count * g));
    bias.upload(b, size_t(count));
    if (n > 0) queries.upload(q, size_t(n * g));
    set = cuda::CandidatesView{g, count, candidates.data(), bias.data()};
  }
};
}  // namespace

void search_nearest_on_gpu(int g, int64_t count, const float* candidates, const float* bias, const float* queries,
                           int64_t n, uint32_t* best_index, float* best_score) {
  HostSearch s(g, count, candidates, bias, queries, n);
  DeviceArray<uint32_t> index(size_t(std::max<int64_t>(n, 1)), "search results");
  DeviceArray<float> score(size_t(std::max<int64_t>(n, 1)), "search results");
  index.poison();
  score.poison();
  cuda::search_nearest_cuda(s.set, s.queries.data(), n, index.data(), score.data(), s.scratch);
  if (n == 0) return;
  index.download(best_index, size_t(n));
  score.download(best_score, size_t(n));
}

void search_top_k_on_gpu(int g, int64_t count, const float* candidates, const float* bias, const float* queries,
                         int64_t n, int k, uint32_t* index, float* score) {
  HostSearch s(g, count, candidates, bias, queries, n);
  const size_t size = size_t(std::max<int64_t>(n, 1)) * size_t(std::max(k, 1));
  DeviceArray<uint32_t> index_d(size, "search results");
  DeviceArray<float> score_d(size, "search results");
  index_d.poison();
  score_d.poison();
  cuda::search_top_k_cuda(s.set, s.queries.data(), n, k, index_d.data(), score_d.data(), s.scratch);
  if (n == 0) return;
  index_d.download(index, size_t(n) * size_t(k));
  score_d.download(score, size_t(n) * size_t(k));
}

}  // namespace aqlm

#else  // no CUDA in this build: every entry point says so

namespace aqlm {

namespace {
[[noreturn]] void no_cuda(const std::string& what) { require_cuda_quantization(what); fail(what, ": no CUDA"); }
}  // namespace

AqlmResult quantize_aqlm_cuda(const LayerProblem& p, const AqlmOptions&, const AqlmProgressFn&) {
  no_cuda(p.name + ": AQLM on the GPU");
}
double relative_error_cuda(const LayerProblem& p, const std::vector<float>&) { no_cuda(p.name + ": relative error on the GPU"); }
QuantizedLayer initialize_aqlm_cuda(const LayerProblem& p, const AqlmOptions&) { no_cuda(p.name + ": AQLM on the GPU"); }
KMeansResult kmeans_cuda(const float*, int64_t, int, int64_t, const KMeansOptions&) { no_cuda("k-means on the GPU"); }
void search_nearest_on_gpu(int, int64_t, const float*, const float*, const float*, int64_t, uint32_t*, float*) {
  no_cuda("candidate search on the GPU");
}
void search_top_k_on_gpu(int, int64_t, const float*, const float*, const float*, int64_t, int, uint32_t*, float*) {
  no_cuda("candidate search on the GPU");
}

}  // namespace aqlm

#endif
