#pragma once
// The AQLM layer quantizer on one CUDA GPU: quantize_aqlm's algorithm with the same options,
// seeds and progress reports (core/quant/aqlm_quantizer.h), every stage on the device:
//   - initialisation: row-norm scales, residual k-means (assignment by the candidate search,
//     centroid means in double in member order: the CPU's k-means step for step);
//   - Adam on codebooks and scales: E = W - W' per step, R = E XTX as an fp32 cuBLAS product, the
//     gradients gathered per codeword / row in double, torch's Adam update;
//   - the beam search sweep over the codes in the CPU's visiting order, each group's candidates
//     of every row scored at once (kernels/cuda/quant_search_cuda.h), R updated by a rank-g product;
//   - energies and the returned relative error in float64 (cuBLAS dgemm), as LayerProblem does.
// Results match the CPU path closely but not bit for bit: the long fp32 sums of the products with
// XTX run in another order, which can flip near-ties in the code search (docs/gpu-notes.md).
//
// Without AQLM_HAVE_CUDA (or without a GPU) every function throws an Error saying so.
#include <cstdint>
#include <vector>

#include "core/quant/aqlm_quantizer.h"
#include "core/quant/kmeans.h"

namespace aqlm {

// Same contract as quantize_aqlm (options.device is ignored). Errors: those of quantize_aqlm, no
// GPU, or not enough free GPU memory for the layer (naming the layer and the sizes).
AqlmResult quantize_aqlm_cuda(const LayerProblem& problem, const AqlmOptions& options,
                              const AqlmProgressFn& progress = {});

// ||(reconstruction - W) X||^2 / ||W X||^2 in double on the GPU (LayerProblem::relative_error).
double relative_error_cuda(const LayerProblem& problem, const std::vector<float>& reconstruction);

// --- The stages, for tests: the GPU twins of initialize_aqlm, kmeans and the candidate search.
QuantizedLayer initialize_aqlm_cuda(const LayerProblem& problem, const AqlmOptions& options);
KMeansResult kmeans_cuda(const float* points, int64_t n, int g, int64_t k, const KMeansOptions& options);
// candidates [count, g], bias [count], queries [n, g] (host arrays). top_k: index/score [n, k].
void search_nearest_on_gpu(int g, int64_t count, const float* candidates, const float* bias, const float* queries,
                           int64_t n, uint32_t* best_index, float* best_score);
void search_top_k_on_gpu(int g, int64_t count, const float* candidates, const float* bias, const float* queries,
                         int64_t n, int k, uint32_t* index, float* score);

}  // namespace aqlm
