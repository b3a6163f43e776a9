#pragma once
// One description for every supported decoder family (Llama 1/2/3, Mistral, Qwen2),
// read from and written to a Hugging Face config.json.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace aqlm {

enum class Architecture { Llama, Mistral, Qwen2 };

const char* architecture_name(Architecture a);  // "llama", "mistral", "qwen2" (HF model_type)
std::string supported_architectures();          // "llama, mistral, qwen2" for error messages

struct RopeScaling {
  std::string type;  // "" (none), "llama3", "linear"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

// quantization_config of an AQLM model (REFERENCE.md section 5).
struct AqlmQuantConfig {
  int num_codebooks = 0;   // M
  int nbits_per_codebook = 0;  // B
  int in_group_size = 0;   // g
  int out_group_size = 1;
  std::vector<std::string> linear_weights_not_to_quantize;
};

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_position_embeddings = 2048;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2)
  int sliding_window = 0;       // Mistral; 0 = none
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;
  std::string torch_dtype = "float32";  // as stored in the source
  std::optional<AqlmQuantConfig> aqlm;

  int kv_dim() const { return num_kv_heads * head_dim; }
  int q_dim() const { return num_heads * head_dim; }
  int64_t num_parameters() const;  // all weights, embeddings and head included
  // Throws Error when a field is missing or inconsistent (heads not dividing, ...).
  void validate() const;

  // `where` names the file in error messages.
  static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_hf_json() const;
};

// Hugging Face tensor names.
std::string layer_prefix(int layer);  // "model.layers.3."
// The seven projections of a decoder block, in the order the quantizer visits them.
const std::vector<std::string>& block_linear_names();  // "self_attn.q_proj", ..., "mlp.down_proj"

}  // namespace aqlm
