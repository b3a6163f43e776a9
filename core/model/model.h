#pragma once
// A loaded model: config, weights, tokenizer and chat template, from any supported format.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model_config.h"
#include "core/model/weight_store.h"

namespace aqlm {

class Tokenizer;

enum class ModelFormat { HuggingFace, HuggingFaceAqlm, Gguf, Llama2c };
const char* model_format_name(ModelFormat f);

struct Model {
  ModelConfig config;
  // Hugging Face names, q/k in the half-split RoPE layout, whatever the source. A model with
  // tied embeddings has no lm_head.weight: the classifier is model.embed_tokens.weight.
  WeightStore weights;
  std::shared_ptr<const Tokenizer> tokenizer;  // null only for a llama2.c model without a tokenizer file
  std::string chat_template;                   // Jinja source; empty when the model has none
  ModelFormat format = ModelFormat::HuggingFace;
  std::string source_path;
  // What the source file says about itself, for display (`info`): GGUF metadata (long arrays
  // summarized) or the safetensors __metadata__; empty for llama2.c.
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct LoadOptions {
  std::string tokenizer_path;  // llama2.c: the tokenizer .bin (else one is looked for beside the model)
  bool load_tokenizer = true;
};

// MODEL is a Hugging Face folder (plain or AQLM), a .gguf file or a llama2.c .bin.
// Throws Error with a one-line reason (unsupported architecture, truncated file, ...).
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

// Rearranges the rows of a q or k projection from the interleaved-pair RoPE layout
// (Meta, llama2.c, GGUF llama) to the half-split layout that Hugging Face uses.
void unpermute_rope_rows(float* weight, int rows, int cols, int n_heads);
// The same on rows of any element type (F16/BF16 GGUF tensors, biases): rows of row_bytes each.
void unpermute_rope_rows_raw(void* rows_data, int rows, size_t row_bytes, int n_heads);

}  // namespace aqlm
