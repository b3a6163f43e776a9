#pragma once
// Compressed models as Hugging Face folders that transformers (with the `aqlm` package) and
// vLLM load, each with an aqlm_studio.json (layouts and schema: docs/aqlm-format.md):
//
//   save_aqlm_folder         AQLM: P.codes / P.codebooks / P.scales for every quantized
//                            projection P, quantization_config in config.json (REFERENCE.md 5)
//   save_dequantized_folder  GPTQ / RTN: a plain fp16 folder whose projections hold the
//                            dequantized weights (no runtime needs a GPTQ kernel to load it)
//
// Both write into a temporary folder beside OUT_DIR that is renamed into place only when
// complete (hf_folder's write_folder_atomically): an existing OUT_DIR is refused unless
// overwrite, and a failure at any point leaves nothing new at OUT_DIR.
//
// One AQLM config per folder: the format's quantization_config is global, so transformers and
// vLLM build every quantized projection with the same M, B and g. A projection may instead be
// kept dense (its P.weight stays in the folder and is listed in linear_weights_not_to_quantize);
// a layer of another config is refused.
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model/model.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

inline constexpr const char* kAqlmStudioJson = "aqlm_studio.json";

struct FolderWriteOptions {
  bool overwrite = false;                    // replace an existing OUT_DIR
  size_t max_shard_bytes = size_t(4) << 30;  // tensor bytes per safetensors file before sharding
  // Fields added to aqlm_studio.json (the run's settings, results, source model...). A field the
  // writer sets itself (format, method, config, bits...) may be repeated only with the same value.
  nlohmann::json studio = nlohmann::json::object();
};

// The quantized projections, handed over one at a time while the folder is written, so a
// writer never holds more than one of them (the pipeline reads them from its checkpoint).
struct AqlmLayerSource {
  AqlmConfig config;                  // the folder's one config
  std::vector<std::string> prefixes;  // "model.layers.3.mlp.down_proj", ...
  // Called once per prefix, in file order. A layer whose config, shape, codes or values do not
  // fit fails the write (Error naming the layer) and leaves nothing behind.
  std::function<std::shared_ptr<const QuantizedLayer>(const std::string& prefix)> load;
};

// Writes MODEL (config, tokenizer, chat template, dense tensors) with the projections of
// LAYERS quantized: for each, P.weight of MODEL is left out and P.codes [out, in/g, M]
// (int8 / int16, aqlm_codes.h), P.codebooks [M, 2^B, 1, g] and P.scales [out, 1, 1, 1] (fp16)
// are written instead. Every other tensor is written as fp16 (an AQLM projection MODEL already
// holds is decoded and written again; an untied lm_head stays dense). config.json gets
// torch_dtype float16 and the quantization_config, listing every tensor kept dense.
// Errors (one line, naming the layer or tensor): no quantized layer; a prefix that is no
// projection of MODEL; a layer whose config differs from the folder's or whose shape differs
// from MODEL's projection; a code >= 2^B; a codebook or scale value that is not finite in fp16;
// a projection neither quantized nor dense; plus the folder errors above.
void save_aqlm_folder(const Model& model, const AqlmLayerSource& layers, const std::string& out_dir,
                      const FolderWriteOptions& options = {});
// The same with the layers in memory; all of them are checked before anything is written.
void save_aqlm_folder(const Model& model, const std::map<std::string, QuantizedLayer>& layers,
                      const std::string& out_dir, const FolderWriteOptions& options = {});

// What a dequantized folder stands for, recorded in aqlm_studio.json.
struct DenseQuantization {
  std::string method;               // "gptq", "rtn"
  std::string config;               // "w2g64"
  double bits_per_parameter = 0;    // of the scalar quantizer, over the quantized projections
  // Projections whose dense weight in the model already is the dequantized one (a model the
  // pipeline assembled from its checkpoint): counted as quantized, written as they are.
  std::vector<std::string> dequantized_in_model;
};

// Writes MODEL as an fp16 folder with the projections in WEIGHTS (prefix -> [out, in] values,
// row-major) replaced by those values (and those of quantization.dequantized_in_model as they
// are). Errors: an unknown prefix, a wrong size, a value that is not finite in fp16, an AQLM
// model, no quantized projection, plus the folder errors above.
void save_dequantized_folder(const Model& model, const std::map<std::string, std::vector<float>>& weights,
                             const DenseQuantization& quantization, const std::string& out_dir,
                             const FolderWriteOptions& options = {});

}  // namespace aqlm
