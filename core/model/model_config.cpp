#include "core/model/model_config.h"

#include <nlohmann/json.hpp>

#include "core/common/error.h"

namespace aqlm {
using nlohmann::json;

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "llama";
    case Architecture::Mistral: return "mistral";
    case Architecture::Qwen2: return "qwen2";
  }
  return "?";
}

std::string supported_architectures() { return "llama (Llama 1/2/3), mistral, qwen2"; }

static const char* hf_class_name(Architecture a) {
  switch (a) {
    case Architecture::Llama: return "LlamaForCausalLM";
    case Architecture::Mistral: return "MistralForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
  }
  return "?";
}

int64_t ModelConfig::num_parameters() const {
  const int64_t h = hidden_size, f = intermediate_size, q = q_dim(), kv = kv_dim();
  int64_t per_layer = h * q + 2 * h * kv + q * h + 3 * h * f + 2 * h;
  if (attention_bias) per_layer += q + 2 * kv;
  int64_t n = int64_t(num_layers) * per_layer + int64_t(vocab_size) * h + h;
  if (!tie_word_embeddings) n += int64_t(vocab_size) * h;
  return n;
}

void ModelConfig::validate() const {
  AQLM_CHECK(hidden_size > 0 && intermediate_size > 0 && num_layers > 0 && num_heads > 0 && vocab_size > 0,
             "model config: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads and vocab_size must be positive");
  AQLM_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0, "model config: num_attention_heads (", num_heads,
             ") is not a multiple of num_key_value_heads (", num_kv_heads, ")");
  AQLM_CHECK(head_dim > 0 && head_dim % 2 == 0, "model config: head_dim ", head_dim, " must be positive and even");
  AQLM_CHECK(rms_norm_eps > 0, "model config: rms_norm_eps must be positive");
  AQLM_CHECK(rope_theta > 0, "model config: rope_theta must be positive");
  AQLM_CHECK(rope_scaling.type.empty() || rope_scaling.type == "llama3" || rope_scaling.type == "linear",
             "model config: rope_scaling type '", rope_scaling.type, "' is not supported (supported: llama3, linear)");
  if (aqlm) {
    AQLM_CHECK(aqlm->num_codebooks >= 1 && aqlm->nbits_per_codebook >= 1 && aqlm->nbits_per_codebook <= 16 &&
                   aqlm->in_group_size >= 1,
               "model config: quantization_config has invalid AQLM parameters");
    AQLM_CHECK(aqlm->out_group_size == 1, "model config: AQLM out_group_size ", aqlm->out_group_size,
               " is not supported (only 1)");
  }
}

template <typename T>
static T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

ModelConfig ModelConfig::from_hf_json(const json& j, const std::string& where) {
  AQLM_CHECK(j.is_object(), where, ": not a JSON object");
  ModelConfig c;
  try {
    const std::string model_type = get_or<std::string>(j, "model_type", "");
    std::string arch_class;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty())
      arch_class = j["architectures"][0].get<std::string>();
    if (model_type == "llama" || arch_class == "LlamaForCausalLM") {
      c.arch = Architecture::Llama;
    } else if (model_type == "mistral" || arch_class == "MistralForCausalLM") {
      c.arch = Architecture::Mistral;
    } else if (model_type == "qwen2" || arch_class == "Qwen2ForCausalLM") {
      c.arch = Architecture::Qwen2;
    } else {
      fail(where, ": architecture '", model_type.empty() ? arch_class : model_type,
           "' is not supported (supported: ", supported_architectures(), ")");
    }
    c.hidden_size = get_or<int>(j, "hidden_size", 0);
    c.intermediate_size = get_or<int>(j, "intermediate_size", 0);
    c.num_layers = get_or<int>(j, "num_hidden_layers", 0);
    c.num_heads = get_or<int>(j, "num_attention_heads", 0);
    c.num_kv_heads = get_or<int>(j, "num_key_value_heads", c.num_heads);
    c.head_dim = get_or<int>(j, "head_dim", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
    c.vocab_size = get_or<int>(j, "vocab_size", 0);
    c.max_position_embeddings = get_or<int>(j, "max_position_embeddings", 2048);
    c.rope_theta = get_or<double>(j, "rope_theta", 10000.0);
    c.rms_norm_eps = get_or<double>(j, "rms_norm_eps", 1e-6);
    c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", false);
    c.attention_bias = c.arch == Architecture::Qwen2 ? true : get_or<bool>(j, "attention_bias", false);
    c.sliding_window = get_or<int>(j, "sliding_window", 0);
    if (c.arch == Architecture::Qwen2 && !get_or<bool>(j, "use_sliding_window", false)) c.sliding_window = 0;
    c.torch_dtype = get_or<std::string>(j, "torch_dtype", get_or<std::string>(j, "dtype", "float32"));
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"].get<int>();
    if (j.contains("eos_token_id")) {
      const json& e = j["eos_token_id"];
      if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int>());
      if (e.is_array())
        for (const auto& v : e) c.eos_token_ids.push_back(v.get<int>());
    }
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      const json& r = j["rope_scaling"];
      c.rope_scaling.type = get_or<std::string>(r, "rope_type", get_or<std::string>(r, "type", ""));
      if (c.rope_scaling.type == "default") c.rope_scaling.type.clear();
      c.rope_scaling.factor = get_or<double>(r, "factor", 1.0);
      c.rope_scaling.low_freq_factor = get_or<double>(r, "low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = get_or<double>(r, "high_freq_factor", 4.0);
      c.rope_scaling.original_max_position_embeddings = get_or<int>(r, "original_max_position_embeddings", 8192);
    }
    if (j.contains("quantization_config") && j["quantization_config"].is_object()) {
      const json& q = j["quantization_config"];
      const std::string method = get_or<std::string>(q, "quant_method", "");
      AQLM_CHECK(method == "aqlm", where, ": quantization method '", method, "' is not supported (supported: aqlm)");
      AqlmQuantConfig a;
      a.num_codebooks = get_or<int>(q, "num_codebooks", 0);
      a.nbits_per_codebook = get_or<int>(q, "nbits_per_codebook", 0);
      a.in_group_size = get_or<int>(q, "in_group_size", 0);
      a.out_group_size = get_or<int>(q, "out_group_size", 1);
      if (q.contains("linear_weights_not_to_quantize") && q["linear_weights_not_to_quantize"].is_array())
        a.linear_weights_not_to_quantize = q["linear_weights_not_to_quantize"].get<std::vector<std::string>>();
      c.aqlm = a;
    }
  } catch (const json::exception& e) {
    fail(where, ": a field has the wrong type (", e.what(), ")");
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  return c;
}

json ModelConfig::to_hf_json() const {
  json j;
  j["architectures"] = {hf_class_name(arch)};
  j["model_type"] = architecture_name(arch);
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_layers;
  j["num_attention_heads"] = num_heads;
  j["num_key_value_heads"] = num_kv_heads;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["hidden_act"] = "silu";
  if (arch != Architecture::Qwen2) j["attention_bias"] = attention_bias;
  if (arch != Architecture::Qwen2) j["mlp_bias"] = false;
  if (sliding_window > 0) j["sliding_window"] = sliding_window;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  if (!rope_scaling.type.empty()) {
    json r;
    r["rope_type"] = rope_scaling.type;
    r["factor"] = rope_scaling.factor;
    if (rope_scaling.type == "llama3") {
      r["low_freq_factor"] = rope_scaling.low_freq_factor;
      r["high_freq_factor"] = rope_scaling.high_freq_factor;
      r["original_max_position_embeddings"] = rope_scaling.original_max_position_embeddings;
    }
    j["rope_scaling"] = r;
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  if (aqlm) {
    j["quantization_config"] = {{"quant_method", "aqlm"},
                                {"nbits_per_codebook", aqlm->nbits_per_codebook},
                                {"num_codebooks", aqlm->num_codebooks},
                                {"in_group_size", aqlm->in_group_size},
                                {"out_group_size", aqlm->out_group_size},
                                {"linear_weights_not_to_quantize", aqlm->linear_weights_not_to_quantize}};
  }
  return j;
}

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

const std::vector<std::string>& block_linear_names() {
  static const std::vector<std::string> names = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                 "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                 "mlp.down_proj"};
  return names;
}

}  // namespace aqlm
