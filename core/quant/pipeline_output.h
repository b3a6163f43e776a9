#pragma once
// The pipeline's ends: the bit budget predicted before the run, the output model assembled
// from the finished blocks, what it measures, and the output folder written elsewhere and
// renamed into place.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/model.h"
#include "core/quant/pipeline.h"

namespace aqlm {

class PipelineCheckpoint;

struct BitsPlan {
  int64_t quantized_parameters = 0;  // of the quantized linears
  double bits_per_parameter = 0;     // over the quantized linears (REFERENCE.md section 1 for AQLM)
  int64_t weight_bytes = 0;          // tensor bytes of the output's weights (every tensor)
};

// Before the run: the formula applied to every quantized linear, and the bytes the output
// file's tensors will take (AQLM: int8/int16 codes, fp16 codebooks and scales, fp16 for the
// rest; GPTQ/RTN: everything fp16, the dequantized weights included).
BitsPlan plan_bits(const ModelConfig& config, const PipelineSettings& settings);

// "2x8g8" for AQLM, "w2g64" for GPTQ/RTN (bits, group size; "w2" for one group per row).
std::string method_config_name(const PipelineSettings& settings);

// The output model: every finished block's tensors (checkpoint block files, memory-mapped),
// the embedding, the final norm and the untied head of `source` rounded to fp16; config with
// torch_dtype float16 and, for AQLM, the quantization_config. The tokenizer is shared.
std::unique_ptr<Model> assemble_output_model(const Model& source, const PipelineCheckpoint& checkpoint,
                                             const PipelineSettings& settings);

// AQLM: bits of the codes, codebooks and scales the model holds over the quantized parameters
// (equal to the formula when B is 8 or 16, whose codes fill their int8/int16 exactly).
// GPTQ/RTN: the nominal bits of the grid, which the dequantized fp16 tensors stand for.
double measured_bits(const Model& output, const PipelineSettings& settings);

// Writes `model` with core/format's writers: an AQLM model as a Hugging Face AQLM folder
// (save_aqlm_folder), a GPTQ/RTN model as an fp16 folder of its dequantized projections
// (save_dequantized_folder), each with aqlm_studio.json holding `studio` (source model,
// settings, results) besides the writer's own fields. Written into a temporary folder beside
// OUT_DIR and renamed into place; a failure leaves nothing new at OUT_DIR. Errors name the folder.
void write_output_folder(const Model& model, const nlohmann::json& studio, const std::filesystem::path& out_dir,
                         const PipelineSettings& settings);

// Bytes of every regular file under `dir`.
int64_t folder_bytes(const std::filesystem::path& dir);

}  // namespace aqlm
