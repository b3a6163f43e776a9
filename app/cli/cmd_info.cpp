// aqlm-cli info MODEL: what a model is and what it needs to run.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "core/runtime/run_memory.h"
#include "core/text/tokenizer.h"

namespace aqlm::cli {

namespace {

struct InfoOptions {
  ModelOptions model;
  bool json = false;
  bool tensors = false;
  int context = 0;
};

void run_info(const InfoOptions& o) {
  const auto model = load_model_or_fail(o.model);
  const ModelConfig& c = model->config;
  const int context = o.context > 0 ? o.context : std::min(c.max_position_embeddings, 4096);

  std::map<std::string, int64_t> dtype_counts;
  for (const auto& name : model->weights.names()) dtype_counts[dtype_name(model->weights.get(name).dtype)] += 1;
  const int64_t weight_bytes = int64_t(model->weights.total_bytes());
  // On the CPU: the weights as loaded, the fp32 KV cache and a 512-token prefill batch.
  const RunMemoryEstimate memory = estimate_run_memory(c, weight_bytes, context, Device::Cpu);
  const int64_t kv = memory.kv_cache;
  const int64_t act = memory.activations;

  nlohmann::json j;
  j["path"] = model->source_path;
  j["format"] = model_format_name(model->format);
  j["architecture"] = architecture_name(c.arch);
  j["parameters"] = c.num_parameters();
  j["layers"] = c.num_layers;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["heads"] = c.num_heads;
  j["kv_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab_size;
  j["max_context"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  if (!c.rope_scaling.type.empty()) j["rope_scaling"] = c.rope_scaling.type;
  j["tied_embeddings"] = c.tie_word_embeddings;
  j["tensor_count"] = model->weights.size();
  j["dtypes"] = dtype_counts;
  j["weights_bytes"] = weight_bytes;
  j["memory"] = {{"context", context}, {"weights_bytes", weight_bytes}, {"kv_cache_bytes", kv},
                 {"activations_bytes", act}, {"total_bytes", memory.total()}};
  if (c.aqlm) {
    j["quantization"] = {{"method", "aqlm"},
                         {"config", std::to_string(c.aqlm->num_codebooks) + "x" + std::to_string(c.aqlm->nbits_per_codebook) +
                                        "g" + std::to_string(c.aqlm->in_group_size)}};
  }
  if (model->tokenizer) {
    j["tokenizer"] = {{"vocab", model->tokenizer->vocab_size()},
                      {"bos_id", model->tokenizer->bos_id()},
                      {"eos_id", model->tokenizer->eos_id()}};
  }
  j["chat_template"] = !model->chat_template.empty();
  if (o.tensors) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& name : model->weights.names()) {
      const TensorView& t = model->weights.get(name);
      list.push_back({{"name", name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}});
    }
    j["tensors"] = list;
  }

  if (o.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("model        %s (%s)\n", model->source_path.c_str(), model_format_name(model->format));
  std::printf("architecture %s, %d layers, hidden %d, FFN %d, heads %d / %d KV (head dim %d)\n", architecture_name(c.arch),
              c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim);
  std::printf("parameters   %.1f M%s\n", double(c.num_parameters()) / 1e6, c.tie_word_embeddings ? " (tied embeddings)" : "");
  std::printf("vocabulary   %d tokens; context %d; RoPE theta %g%s\n", c.vocab_size, c.max_position_embeddings, c.rope_theta,
              c.rope_scaling.type.empty() ? "" : (" (" + c.rope_scaling.type + " scaling)").c_str());
  if (c.aqlm) std::printf("quantization AQLM %s\n", j["quantization"]["config"].get<std::string>().c_str());
  std::string dtypes;
  for (const auto& [d, n] : dtype_counts) dtypes += (dtypes.empty() ? "" : ", ") + std::to_string(n) + " " + d;
  std::printf("tensors      %zu (%s), %s as loaded\n", model->weights.size(), dtypes.c_str(), format_bytes(double(weight_bytes)).c_str());
  std::printf("memory       %s to run with a %d-token context (weights %s, KV cache %s, activations %s)\n",
              format_bytes(double(memory.total())).c_str(), context, format_bytes(double(weight_bytes)).c_str(),
              format_bytes(double(kv)).c_str(), format_bytes(double(act)).c_str());
  std::printf("chat         %s\n", model->chat_template.empty() ? "no template (ChatML is used)" : "model's own template");
  if (o.tensors) {
    for (const auto& t : j["tensors"])
      std::printf("  %-50s %-5s %s\n", t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                  t["shape"].dump().c_str());
  }
}

}  // namespace

void register_info(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Show a model's architecture, parameters, tensors and the memory it needs");
  add_model_options(*cmd, options->model, false);
  cmd->add_flag("--json", options->json, "print JSON");
  cmd->add_flag("--tensors", options->tensors, "list every tensor");
  cmd->add_option("--ctx", options->context, "context length for the memory estimate (default: the model's, at most 4096)");
  cmd->callback([options] { run_info(*options); });
}

}  // namespace aqlm::cli
