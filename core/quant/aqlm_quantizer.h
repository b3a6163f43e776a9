#pragma once
// AQLM calibration of one linear layer (REFERENCE.md section 2):
//   scales <- row L2 norms; codebooks and codes <- residual k-means of W / scales;
//   then epochs of { Adam on codebooks and scales with codes fixed; one beam-search sweep
//   over the codes } until the relative error improves by less than `relative_tolerance`
//   over an epoch, or `max_epochs`.
// The objective is the output error tr(E XTX E^T), E = W' - W; every step reports the relative
// error tr(E XTX E^T) / tr(W XTX W^T) to the progress callback. Deterministic for a seed,
// whatever the number of threads.
#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/quant/compute_device.h"
#include "core/quant/kmeans.h"
#include "core/quant/layer_problem.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

class ThreadPool;

struct AqlmOptions {
  AqlmConfig config;
  int beam_size = 0;  // 0: 1 when 2^B >= 4096 (the 1x16 recipes), else 8 (the 2x8 recipes)
  int max_epochs = 100;
  double relative_tolerance = 0.01;
  // Adam on codebooks and scales (torch's Adam, amsgrad off), the paper's lr and betas. The
  // paper runs 100 steps per epoch; on the CPU each step is an [out, in] x [in, in] GEMM and
  // the code search does most of the work, so 20 steps per epoch reach a lower error for the
  // same time (docs/benchmarks.md, quant section). A larger lr (5e-4) saves a little more
  // but makes the loss oscillate near convergence.
  int adam_steps = 20;
  double learning_rate = 1e-4;
  double beta1 = 0.0, beta2 = 0.95;
  // Residual k-means initialisation.
  // Lloyd iterations; 0: automatic, 20, or 6 when 2^B > 4096 (for 1x16, 20 iterations cost
  // half the run and ended no better: docs/benchmarks.md, quant section).
  int kmeans_iterations = 0;
  // Fit each codebook on at most this many groups per codeword (a seeded subset); 0: automatic,
  // min(all, max(4, 2^34 / 2^(2B)) x 2^B): every group for B <= 12, 4 per codeword for 1x16.
  int64_t kmeans_points_per_centroid = 0;
  uint64_t seed = 0;
  const std::atomic<bool>* cancel = nullptr;  // checked between steps; Error "cancelled" when set
  ThreadPool* pool = nullptr;                  // null: ThreadPool::global()
  // Cuda: the same algorithm on one GPU (core/quant/aqlm_quantizer_cuda.h); Error when the build
  // or the machine has no usable GPU.
  ComputeDevice device = ComputeDevice::Cpu;
};

enum class AqlmPhase { Initialization, CodebookUpdate, BeamSearch };
const char* aqlm_phase_name(AqlmPhase phase);

struct AqlmProgress {
  AqlmPhase phase = AqlmPhase::Initialization;
  int epoch = 0;           // 0-based; initialization reports epoch 0
  int step = 0, steps = 0; // Adam: step s of `steps` (step 0: before the first update); beam: groups done
  double relative_error = 0;
  double seconds = 0;      // since the start of quantize_aqlm
};
using AqlmProgressFn = std::function<void(const AqlmProgress&)>;

struct AqlmEpochStats {
  double relative_error_after_adam = 0, relative_error = 0;  // relative error = after the beam search
  double adam_seconds = 0, beam_seconds = 0;
};

struct AqlmResult {
  QuantizedLayer layer;
  double initial_relative_error = 0;  // after k-means
  double relative_error = 0;          // of the returned layer, computed in double
  double init_seconds = 0, seconds = 0;
  std::vector<AqlmEpochStats> epochs;
};

// Errors (one line, naming problem.name): unsupported config (M 1..8, B 4..16, g 4/8/16),
// in_features not a multiple of g, non-finite W or XTX, zero ||W X||, bad options.
AqlmResult quantize_aqlm(const LayerProblem& problem, const AqlmOptions& options,
                         const AqlmProgressFn& progress = {});

// --- The stages, exposed for tests and for later pipelines (PV-Tuning reuses the sweep). ---

// The option and config checks of quantize_aqlm (one-line Errors naming problem.name).
void check_aqlm_options(const LayerProblem& problem, const AqlmOptions& options);

// The k-means options of codebook m (of K codewords) in initialize_aqlm, and the seed of epoch's
// beam search: the GPU path makes the same random choices through these.
KMeansOptions aqlm_kmeans_options(const AqlmOptions& options, int64_t K, int m);
uint64_t aqlm_beam_seed(const AqlmOptions& options, int epoch);

// Scales = row norms, then residual k-means of W / scales.
QuantizedLayer initialize_aqlm(const LayerProblem& problem, const AqlmOptions& options);

}  // namespace aqlm
