#include "app/studio/budget.h"

#include "core/quant/global_finetuner.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "core/common/error.h"
#include "core/quant/pipeline_output.h"

namespace aqlm::studio {

namespace {

// The input widths of the quantized linears: q/k/v/o/gate/up take hidden_size (o: q_dim),
// down takes intermediate_size.
std::vector<int64_t> layer_inputs(const ModelConfig& c) { return {c.hidden_size, c.q_dim(), c.intermediate_size}; }

}  // namespace

const std::vector<double>& preset_targets() {
  static const std::vector<double> targets{1.0, 1.6, 2.0, 3.0, 4.0};
  return targets;
}

std::vector<int> usable_group_sizes(const ModelConfig& config) {
  std::vector<int> sizes;
  for (int g : {4, 8, 16}) {
    bool divides = true;
    for (int64_t in : layer_inputs(config)) divides = divides && in % g == 0;
    if (divides) sizes.push_back(g);
  }
  return sizes;
}

BudgetChoice evaluate_budget(const ModelConfig& config, const PipelineSettings& settings) {
  if (settings.method == PipelineMethod::Aqlm)
    for (int64_t in : layer_inputs(config))
      AQLM_CHECK(in % settings.aqlm.group_size == 0, settings.aqlm.name(), ": groups of ", settings.aqlm.group_size,
                 " do not divide the ", in, " inputs of some of this model's layers (use g",
                 usable_group_sizes(config).empty() ? std::string("4") : std::to_string(usable_group_sizes(config).front()), ")");
  const BitsPlan plan = plan_bits(config, settings);
  BudgetChoice choice;
  choice.settings = settings;
  choice.bits_per_parameter = plan.bits_per_parameter;
  choice.weight_bytes = plan.weight_bytes;
  return choice;
}

std::optional<BudgetChoice> nearest_aqlm_config(const ModelConfig& config, double target) {
  std::optional<BudgetChoice> best;
  for (int g : usable_group_sizes(config))
    for (int m = 1; m <= 4; ++m)
      for (int b : {8, 10, 12, 14, 16}) {
        PipelineSettings settings;
        settings.method = PipelineMethod::Aqlm;
        settings.aqlm = AqlmConfig{m, b, g};
        BudgetChoice choice = evaluate_budget(config, settings);
        choice.target_bits = target;
        const double distance = std::abs(choice.bits_per_parameter - target);
        if (!best) {
          best = choice;
          continue;
        }
        const double best_distance = std::abs(best->bits_per_parameter - target);
        const int codebook_bits = m * b, best_codebook_bits = best->settings.aqlm.num_codebooks * best->settings.aqlm.nbits;
        if (distance < best_distance - 1e-9 || (distance < best_distance + 1e-9 && codebook_bits < best_codebook_bits))
          best = choice;
      }
  return best;
}

// A deliberately simple cost model, labelled "rough" in the wizard. Work in multiply-adds:
//  - AQLM: the beam search scores 2^B codewords per group, codebook and beam entry, for about
//    four rounds; plus Adam steps over the layer (out*in per step);
//  - GPTQ: a Cholesky-based pass of about in multiply-adds per weight; RTN: one per weight;
//  - every method: XTX (in^2 per token and shared input) and three block passes per window;
//  - fine-tuning: 2 multiply-adds per weight per token per epoch (early stopping usually ends
//    it well before the last epoch; forward + backward cost about 6 when it does not).
// Measured on stories260K 2x8g4 (8 windows of 128 tokens, one thread): 6.8 s of CPU, which
// this model puts at 10 s with 1e9 multiply-adds per second and thread. Good to a factor of
// about two: the wizard says "rough".
RunEstimate estimate_run(const ModelConfig& c, std::int64_t loaded_bytes, const PipelineSettings& s, int threads) {
  const double tokens = double(s.nsamples + std::max<int64_t>(s.heldout_windows(), 0)) * double(s.seqlen);
  const double hidden = c.hidden_size, inter = c.intermediate_size;
  const double block_params = 4.0 * hidden * hidden * (double(c.q_dim()) / hidden) + 3.0 * hidden * inter;
  const double params = block_params * c.num_layers;
  double work = 3.0 * tokens * params + tokens * c.num_layers * (2.0 * hidden * hidden + inter * inter);
  switch (s.method) {
    case PipelineMethod::Aqlm: {
      const int beam = s.beam > 0 ? s.beam : (s.aqlm.nbits < 12 ? 8 : 1);
      const double rounds = std::min(4, s.layer_max_epochs);
      work += params * s.aqlm.num_codebooks * double(s.aqlm.codebook_size()) * beam * rounds;
      work += params * double(s.layer_adam_steps) * rounds * 2.0;
      if (s.finetune) work += 2.0 * params * tokens * s.finetune_epochs;
      // Global fine-tuning: forward and backward through every block and the head for the
      // train windows each epoch (3x a forward), plus the teacher's forward once.
      if (s.global_finetune_epochs > 0) {
        const double train_tokens = double(s.nsamples) * double(s.seqlen);
        const double head = double(c.vocab_size) * hidden;
        work += train_tokens * (3.0 * (params + 2.0 * head) * s.global_finetune_epochs + params);
      }
      break;
    }
    case PipelineMethod::Gptq: work += params * std::max(hidden, inter); break;
    case PipelineMethod::Rtn: work += params; break;
  }
  const int cores = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  RunEstimate estimate;
  estimate.seconds = work / (1e9 * cores);
  // On the GPU the same work runs at a rate that grows with the layers' size (small products
  // leave most of the card idle). Two runs on an H100 (docs/benchmarks.md, 2026-11-23) fix it:
  // SmolLM2-135M 2x8g8, 144 x 512 tokens: this model's work in 134 s (1.6e12/s, hidden 576);
  // a Llama-2-7B block, 144 x 4096 tokens: 151 s (1.9e13/s, hidden 4096); so
  // rate = 1.6e12 * (hidden / 576)^1.27, at most 2e13/s.
  const double gpu_rate = std::min(2e13, 1.6e12 * std::pow(hidden / 576.0, 1.27));
  estimate.gpu_seconds = work / gpu_rate;
  // The model as loaded, three sets of fp16 activations (inputs, fp targets, next inputs), one
  // block's XTX in float64, and fine-tuning's saved activations of a micro-batch.
  const double activations = 3.0 * tokens * hidden * 2.0;
  const double xtx = 2.0 * std::max(hidden, inter) * std::max(hidden, inter) * 8.0;
  const double finetune = s.method == PipelineMethod::Aqlm && s.finetune
                              ? double(std::min<int64_t>(s.finetune_batch, s.nsamples)) * s.seqlen * (8.0 * hidden + 4.0 * inter) * 4.0
                              : 0.0;
  estimate.peak_bytes = loaded_bytes + std::int64_t(activations + xtx + finetune);
  if (s.method == PipelineMethod::Aqlm && s.global_finetune_epochs > 0)  // on the CPU, after the blocks
    estimate.peak_bytes = std::max(estimate.peak_bytes,
                                   loaded_bytes + global_finetune_memory_bytes(c, s.nsamples + s.heldout_windows(), s.seqlen, 1));
  // The GPU holds the same activations, statistics and fine-tuning batch, one block's weights
  // at a time (33.8 GB measured for the 7B block above, where this gives 36 GB).
  estimate.gpu_peak_bytes = std::int64_t(activations + xtx + finetune + block_params * 4.0);
  return estimate;
}

}  // namespace aqlm::studio
