#pragma once
// Hugging Face model folders: config.json, model.safetensors (or shards listed by
// model.safetensors.index.json), tokenizer.json, tokenizer_config.json, generation_config.json.
// Reading maps the safetensors files (no copies); writing streams tensor by tensor into a
// temporary folder that is renamed into place only when complete.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/model/model.h"
#include "core/model/model_config.h"
#include "core/model/safetensors.h"
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

// ---- The steps of save_hf_folder, for writers of other layouts (core/format's AQLM writer).

// Makes OUT_DIR by calling fill(temp) on a fresh temporary folder beside it, then renaming that
// into place. An existing OUT_DIR is refused unless `overwrite`; then it is moved aside first and
// removed only once the new folder is in place. On any failure the temporary folder is removed
// and OUT_DIR is left as it was. Errors name the folder.
void write_folder_atomically(const std::string& out_dir, bool overwrite,
                             const std::function<void(const std::filesystem::path& temp_dir)>& fill);

// config.json (from `config`, with bos/eos taken from the tokenizer where the config has none),
// tokenizer.json + tokenizer_config.json (when the model has a tokenizer; chat template
// included) and generation_config.json, into DIR.
void write_hf_config_files(const Model& model, ModelConfig config, const std::filesystem::path& dir);

// One tensor of a folder being written: its entry in the file, and a function that gives its
// bytes when its turn comes (it may fill `scratch` and point into it), so a writer never holds
// more than one tensor. A float view of another dtype than the entry's is converted on the way.
struct HfTensorToWrite {
  SafetensorsEntry entry;
  std::function<TensorView(std::vector<uint8_t>& scratch)> data;
};

// The tensors as DIR/model.safetensors, or as model-0000K-of-0000N.safetensors shards of at most
// max_shard_bytes plus model.safetensors.index.json: the embedding first, then the layers in
// numeric order, lm_head last, with the __metadata__ {"format": "pt"} transformers requires.
void write_hf_weights(const std::filesystem::path& dir, std::vector<HfTensorToWrite> tensors, size_t max_shard_bytes);

// "float16" -> F16, "bfloat16" -> BF16, "float32" -> F32; nullopt otherwise.
std::optional<DType> dtype_from_torch_name(const std::string& torch_dtype);
const char* torch_dtype_name(DType dtype);  // F16 -> "float16", ...

}  // namespace aqlm
