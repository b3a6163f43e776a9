#include "core/quant/pipeline_output.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/format/aqlm_writer.h"
#include "core/model/hf_folder.h"
#include "core/model/safetensors.h"
#include "core/quant/block_trainable.h"
#include "core/quant/pipeline_checkpoint.h"
#include "core/quant/uniform_grid.h"

namespace aqlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<std::pair<int64_t, int64_t>> quantized_shapes(const ModelConfig& config) {
  const BlockShape shape = BlockShape::from_config(config);
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int b = 0; b < config.num_layers; ++b)
    for (int l = 0; l < kBlockLinearCount; ++l)
      shapes.emplace_back(shape.out_features(BlockLinear(l)), shape.in_features(BlockLinear(l)));
  return shapes;
}

// Tensors that are neither a quantized linear nor part of one: embedding, norms, head.
int64_t dense_parameters(const ModelConfig& c) {
  const int64_t embed = int64_t(c.vocab_size) * c.hidden_size;
  return embed + (c.tie_word_embeddings ? 0 : embed) + c.hidden_size + int64_t(c.num_layers) * 2 * c.hidden_size;
}

void add_f16(WeightStore& store, const std::string& name, const WeightStore& source) {
  const TensorView& t = source.get(name);
  std::vector<float> values = source.to_f32(name);
  std::vector<uint8_t> bytes(values.size() * 2);
  uint16_t* dst = reinterpret_cast<uint16_t*>(bytes.data());
  for (size_t i = 0; i < values.size(); ++i) dst[i] = f32_to_f16(values[i]);
  store.add_owned(name, DType::F16, t.shape, std::move(bytes));
}

}  // namespace

std::string method_config_name(const PipelineSettings& s) {
  if (s.method == PipelineMethod::Aqlm) return s.aqlm.name();
  return s.group_size > 0 ? str("w", s.bits, "g", s.group_size) : str("w", s.bits);
}

BitsPlan plan_bits(const ModelConfig& config, const PipelineSettings& s) {
  const auto shapes = quantized_shapes(config);
  BitsPlan plan;
  double bits = 0;
  int64_t bytes = dense_parameters(config) * 2;
  if (config.attention_bias) bytes += int64_t(config.num_layers) * (config.q_dim() + 2 * config.kv_dim()) * 2;
  for (const auto& [out, in] : shapes) {
    plan.quantized_parameters += out * in;
    if (s.method == PipelineMethod::Aqlm) {
      const AqlmConfig& a = s.aqlm;
      bits += aqlm_bits_per_parameter(out, in, a) * double(out * in);
      bytes += out * (in / a.group_size) * a.num_codebooks * (a.nbits <= 8 ? 1 : 2) +
               a.num_codebooks * a.codebook_size() * a.group_size * 2 + out * 2;
    } else {
      bits += uniform_bits_per_parameter(out, in, s.bits, s.group_size, false) * double(out * in);
      bytes += out * in * 2;  // stored dequantized, in fp16
    }
  }
  plan.bits_per_parameter = bits / double(plan.quantized_parameters);
  plan.weight_bytes = bytes;
  return plan;
}

std::unique_ptr<Model> assemble_output_model(const Model& source, const PipelineCheckpoint& checkpoint,
                                             const PipelineSettings& s) {
  auto out = std::make_unique<Model>();
  out->config = source.config;
  out->config.torch_dtype = "float16";
  for (int b = 0; b < source.config.num_layers; ++b) SafetensorsFile(checkpoint.block_path(b).string()).add_to(out->weights);
  add_f16(out->weights, "model.embed_tokens.weight", source.weights);
  add_f16(out->weights, "model.norm.weight", source.weights);
  if (!source.config.tie_word_embeddings) add_f16(out->weights, "lm_head.weight", source.weights);
  if (s.method == PipelineMethod::Aqlm) {
    AqlmQuantConfig q;
    q.num_codebooks = s.aqlm.num_codebooks;
    q.nbits_per_codebook = s.aqlm.nbits;
    q.in_group_size = s.aqlm.group_size;
    q.out_group_size = 1;
    // Every tensor kept dense, as the published AQLM checkpoints list them.
    for (const auto& name : out->weights.names()) {
      const bool part_of_linear = name.ends_with(".codes") || name.ends_with(".codebooks") ||
                                  name.ends_with(".scales") || name.ends_with("_proj.bias");
      if (!part_of_linear) q.linear_weights_not_to_quantize.push_back(name);
    }
    out->config.aqlm = q;
    out->format = ModelFormat::HuggingFaceAqlm;
  } else {
    out->format = ModelFormat::HuggingFace;
  }
  out->tokenizer = source.tokenizer;
  out->chat_template = source.chat_template;
  out->source_path = s.out_dir;
  check_hf_weights(out->config, out->weights, "quantized model");
  return out;
}

double measured_bits(const Model& output, const PipelineSettings& s) {
  const ModelConfig& c = output.config;
  if (s.method != PipelineMethod::Aqlm) return plan_bits(c, s).bits_per_parameter;
  double bits = 0, params = 0;
  const BlockShape shape = BlockShape::from_config(c);
  for (int b = 0; b < c.num_layers; ++b) {
    for (int l = 0; l < kBlockLinearCount; ++l) {
      const std::string p = layer_prefix(b) + block_linear_names()[size_t(l)];
      for (const char* part : {".codes", ".codebooks", ".scales"}) bits += 8.0 * double(output.weights.get(p + part).nbytes());
      params += double(shape.out_features(BlockLinear(l)) * shape.in_features(BlockLinear(l)));
    }
  }
  return bits / params;
}

void write_output_folder(const Model& model, const json& studio, const fs::path& out_dir,
                         const PipelineSettings& settings) {
  FolderWriteOptions options;
  options.overwrite = settings.overwrite;
  options.studio = studio;
  if (settings.method == PipelineMethod::Aqlm) {
    save_aqlm_folder(model, std::map<std::string, QuantizedLayer>{}, out_dir.string(), options);  // every AQLM projection as it is
    return;
  }
  DenseQuantization q;
  q.method = pipeline_method_name(settings.method);
  q.config = method_config_name(settings);
  q.bits_per_parameter = plan_bits(model.config, settings).bits_per_parameter;
  for (int b = 0; b < model.config.num_layers; ++b)
    for (const auto& name : block_linear_names()) q.dequantized_in_model.push_back(layer_prefix(b) + name);
  save_dequantized_folder(model, {}, q, out_dir.string(), options);
}

int64_t folder_bytes(const fs::path& dir) {
  int64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += int64_t(entry.file_size());
  return total;
}

}  // namespace aqlm
