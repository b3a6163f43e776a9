#pragma once
// The block-by-block quantization pipeline (REFERENCE.md sections 2-3, docs/quantization.md):
//
//   calibration windows -> embeddings -> for each decoder block b:
//     fp targets:   T = fp_block(X) for every window (XTX of q/k/v from the same pass)
//     quantize q, k, v     (one XTX: their shared input)
//     XTX of o_proj        with q/k/v already quantized, then quantize o_proj
//     XTX of gate/up       with attention quantized, then quantize gate and up
//     XTX of down_proj     with everything else quantized, then quantize down_proj
//     block fine-tuning    (AQLM: codebooks, scales, norms, biases vs T; codes frozen)
//     X <- quantized_block(X), the input of block b+1
//   -> output folder (HF AQLM, or dense fp16 for GPTQ/RTN) written elsewhere and renamed in.
//
// Everything the output file stores as fp16 (codebooks, scales, norms, embeddings, GPTQ/RTN
// weights) is rounded to fp16 before it computes anything the run measures or passes on, so
// what is measured is what is saved. Activations between blocks are kept as fp16, in memory
// or on disk (--max-ram). After every layer the state is saved to a checkpoint folder; a run
// resumed from it gives byte-identical output files, because every random choice is seeded
// from (seed, block, layer) and every computation is independent of the thread count.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/quant/calibration.h"
#include "core/quant/compute_device.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

class ProgressSink;

enum class PipelineMethod { Aqlm, Gptq, Rtn };
const char* pipeline_method_name(PipelineMethod method);  // "aqlm", "gptq", "rtn"
PipelineMethod parse_pipeline_method(const std::string& name);  // Error listing the methods

struct PipelineSettings {
  // ---- What and where
  std::string model;            // anything load_model() reads
  std::string tokenizer;        // llama2.c tokenizer .bin (else found beside the model)
  std::string out_dir;
  std::string checkpoint_dir;   // empty: OUT_DIR.checkpoint beside the output
  bool overwrite = false;       // replace an existing output folder (and a stale checkpoint)
  bool resume = false;          // continue from the checkpoint (a fresh start when there is none)
  bool keep_checkpoint = false; // keep the checkpoint folder after success

  // ---- Method
  PipelineMethod method = PipelineMethod::Aqlm;
  AqlmConfig aqlm{2, 8, 8};     // MxBgG
  int beam = 0;                 // 0: the quantizer's default (8 for 2^B < 4096, else 1)
  int layer_max_epochs = 100;   // AQLM: alternations of Adam and beam search per layer ...
  double layer_tolerance = 0.01;  // ... until the relative error improves by less than this
  int layer_adam_steps = 100;
  double layer_learning_rate = 1e-4;
  int bits = 2;                 // GPTQ / RTN
  int64_t group_size = 64;      // GPTQ / RTN; 0: one group per row

  // ---- Calibration
  std::vector<std::string> calibration_files;  // empty: default_calibration_text_path()
  int64_t nsamples = 128;       // calibration (train) windows
  int64_t heldout = -1;         // held-out windows; -1: nsamples / 8 (at least 1) with fine-tuning, else 0
  int64_t seqlen = 512;
  uint64_t seed = 0;

  // ---- Block fine-tuning (AQLM only)
  bool finetune = true;
  int finetune_epochs = 10;
  double finetune_learning_rate = 1e-4;
  int64_t finetune_batch = 16;  // windows per Adam step
  int finetune_patience = 3;    // held-out evaluations without improvement before stopping

  // ---- Global fine-tuning (AQLM only; core/quant/global_finetuner.h): after the last block,
  // the whole model's codebooks, scales and norms trained on KL against the source model over
  // the same calibration windows. 0 epochs: off. Runs on the CPU.
  int global_finetune_epochs = 0;
  double global_finetune_learning_rate = 1e-4;
  int64_t global_finetune_batch = 8;  // windows per Adam step

  // ---- Resources and evaluation
  // Cuda: block passes, AQLM layers and fine-tuning on one GPU (GPTQ/RTN stay on the CPU); the
  // output differs from a CPU run's by float rounding, so a checkpoint resumes on its own device.
  ComputeDevice device = ComputeDevice::Cpu;
  double max_ram_gb = 0;        // activations budget; 0: keep them all in memory
  std::string eval_text;        // perplexity of the result on this text (empty: none)
  int64_t eval_seqlen = 0;      // 0: seqlen

  int64_t heldout_windows() const;  // `heldout` with the automatic value resolved
  // The calibration files (the default text when none is given) and the window choice.
  std::vector<std::string> resolved_calibration_files() const;
  CalibrationOptions calibration_options() const;
  // Checks ranges and combinations; Error naming the option.
  void validate() const;
  nlohmann::json to_json() const;  // every field
  static PipelineSettings from_json(const nlohmann::json& j);  // missing fields keep their defaults
  // The settings that decide the output bytes: a checkpoint made with other values is refused.
  nlohmann::json result_settings() const;
  std::string resolved_checkpoint_dir() const;
};

struct LayerReport {
  int block = 0;
  std::string layer;            // "self_attn.q_proj"
  int64_t out_features = 0, in_features = 0;
  double relative_error = 0;    // ||(W'-W) X||^2 / ||W X||^2 on the calibration XTX, W' as saved
  double bits = 0;              // bits per parameter of this layer
  double seconds = 0;           // when it was quantized (a restored layer keeps its first run's time)
};

struct BlockReport {
  int block = 0;
  // Relative MSE of the quantized block's outputs against the fp block's on the same inputs.
  double train_relative_mse = 0, heldout_relative_mse = 0;
  std::optional<double> finetune_heldout_before, finetune_heldout_after;  // when fine-tuned
  int64_t finetune_steps = 0;
  double seconds = 0;
};

struct GlobalFinetuneReport {
  double heldout_kl_before = 0, heldout_kl_after = 0;  // nats per token, the best parameters' after
  int64_t steps = 0, best_step = 0;
  int epochs_run = 0;
  bool stopped_early = false;
  double seconds = 0;
};

struct EvaluationReport {
  std::string text;             // the file
  int64_t seqlen = 0, windows = 0, tokens = 0;
  double nll = 0, perplexity = 0, seconds = 0;
};

struct PipelineResult {
  std::string out_dir;
  std::string method, config;   // "aqlm", "2x8g8" / "w2g64"
  // Over the quantized linears (embeddings, norms and head excluded).
  int64_t quantized_parameters = 0;
  double predicted_bits = 0;    // the formula, before the run
  double measured_bits = 0;     // AQLM: codes + codebooks + scales as stored in the written file;
                                // GPTQ/RTN: the grid's nominal bits (the file stores them dequantized)
  int64_t predicted_weight_bytes = 0;  // tensor bytes of the output's weights, before the run
  int64_t output_bytes = 0;            // every file of the written folder
  std::vector<LayerReport> layers;
  std::vector<BlockReport> blocks;
  std::optional<GlobalFinetuneReport> global_finetune;
  std::optional<EvaluationReport> evaluation;
  bool resumed = false;
  double seconds = 0;           // of this process's part of the run
};

// Runs the pipeline. Progress goes to `sink` (may be null). `cancel` is checked at every step
// boundary: when set, the run stops leaving its checkpoint (resumable) and throws Cancelled.
// Errors (one line): bad settings; the output folder exists without overwrite; a layer whose
// inputs the group size does not divide; NaN/Inf in a weight (naming the tensor); calibration
// text too short (saying how many tokens are needed); a checkpoint made with other settings;
// a failed write (nothing that looks like a complete model is left at OUT_DIR).
PipelineResult run_pipeline(const PipelineSettings& settings, ProgressSink* sink = nullptr,
                            const std::atomic<bool>* cancel = nullptr);

}  // namespace aqlm
