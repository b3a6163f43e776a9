#pragma once
// Hugging Face model folders: config.json, model.safetensors (or shards listed by
// model.safetensors.index.json), tokenizer.json, tokenizer_config.json, generation_config.json.
// Reading maps the safetensors files (no copies); writing streams tensor by tensor into a
// temporary folder that is renamed into place only when complete.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/model/model.h"
#include "core/model/model_config.h"
#include "core/model/tensor.h"
#include "core/model/weight_store.h"

namespace aqlm {

struct HfWeights {
  ModelConfig config;
  WeightStore weights;
  std::map<std::string, std::string> metadata;  // safetensors __metadata__
};

// config.json and the safetensors weights of DIR, checked against each other
// (check_hf_weights). eos ids of generation_config.json are added to the config.
HfWeights load_hf_weights(const std::string& dir);

// Checks that `weights` holds exactly what a model of `config` needs, with the right shapes
// and dtypes: float tensors for a dense model; for an AQLM model (config.aqlm) each quantized
// linear P as P.codes [out, in/g, M] (I8 when nbits <= 8, else I16), P.codebooks [M, 2^B, 1, g]
// and P.scales [out, 1, 1, 1] (float), and the linears named in linear_weights_not_to_quantize
// dense. Drops what carries no information: lm_head.weight of a tied model (the runtime uses
// the embedding) and rotary_emb.inv_freq buffers. Error names `where` and the tensor.
void check_hf_weights(const ModelConfig& config, WeightStore& weights, const std::string& where);

// The whole model: weights plus tokenizer (tokenizer.json + tokenizer_config.json) and chat
// template (tokenizer_config.json's chat_template or chat_template.jinja).
std::unique_ptr<Model> load_hf_folder(const std::string& dir, const LoadOptions& options = {});

struct SaveOptions {
  // F32, F16 or BF16 for every float tensor (config.json's torch_dtype says it). Unset: each
  // tensor keeps its dtype, except that GGUF and llama2.c models are written in F32 (their
  // dequantized values are exact in F32, so logits match the source). The tensors of an AQLM
  // model are always written as they are.
  std::optional<DType> dtype;
  bool overwrite = false;                   // replace an existing OUT_DIR
  size_t max_shard_bytes = size_t(4) << 30;  // tensor bytes per safetensors file before sharding
};

// Writes MODEL as a Hugging Face folder at OUT_DIR (see the file comment). Throws Error naming
// the file on any failure, after removing the temporary folder.
void save_hf_folder(const Model& model, const std::string& out_dir, const SaveOptions& options = {});

// "float16" -> F16, "bfloat16" -> BF16, "float32" -> F32; nullopt otherwise.
std::optional<DType> dtype_from_torch_name(const std::string& torch_dtype);
const char* torch_dtype_name(DType dtype);  // F16 -> "float16", ...

}  // namespace aqlm
