#pragma once
// The wizard's arithmetic, from a model's real shapes (core's plan_bits over its linears):
// which AQLM configuration lands nearest each preset bit budget, what a configuration costs in
// bits and bytes, and rough time and peak-memory estimates for a run.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model/model_config.h"
#include "core/quant/pipeline.h"

namespace aqlm::studio {

struct BudgetChoice {
  double target_bits = 0;       // the preset's nominal budget (0 for a custom configuration)
  PipelineSettings settings;    // method and configuration (other fields default)
  double bits_per_parameter = 0;  // exact, over the quantized linears
  std::int64_t weight_bytes = 0;  // of the output's tensors
};

// The presets of the wizard: ~1, ~1.6, ~2, ~3, ~4 bits.
const std::vector<double>& preset_targets();

// Group sizes the quantizer supports (4, 8, 16) that divide every quantized layer's inputs.
std::vector<int> usable_group_sizes(const ModelConfig& config);

// Among MxBgG with M 1..4, B in {8, 10, 12, 14, 16} and a usable g, the configuration whose
// exact bits per parameter on this model is nearest `target` (ties: fewer codebook bits, which
// quantize faster). nullopt when no group size divides the model's layers.
std::optional<BudgetChoice> nearest_aqlm_config(const ModelConfig& config, double target);

// Bits and bytes of `settings` (its method and configuration) on this model; Error naming the
// configuration and the layer when the group size does not divide a layer's inputs.
BudgetChoice evaluate_budget(const ModelConfig& config, const PipelineSettings& settings);

struct RunEstimate {
  double seconds = 0;              // rough, on the CPU: see budget.cpp for the model behind it
  std::int64_t peak_bytes = 0;     // of the pipeline process
  double gpu_seconds = 0;          // rough, with --device cuda (an H100-class card)
  std::int64_t gpu_peak_bytes = 0; // GPU memory with --device cuda
};

// `loaded_bytes`: the model's weights as loaded (fp32 after dequantizing a GGUF).
RunEstimate estimate_run(const ModelConfig& config, std::int64_t loaded_bytes, const PipelineSettings& settings,
                         int threads);

}  // namespace aqlm::studio
