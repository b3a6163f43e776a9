#include "core/format/aqlm_writer.h"

#include <algorithm>
#include <set>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/paths.h"
#include "core/format/aqlm_codes.h"
#include "core/format/aqlm_reader.h"
#include "core/model/hf_folder.h"

namespace aqlm {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }

// fp16 keeps values up to 65504; anything larger (or NaN) would be stored as inf/NaN.
void check_finite_in_f16(const std::vector<float>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i)
    AQLM_CHECK((f32_to_f16(values[i]) & 0x7c00u) != 0x7c00u, what, ": value ", values[i], " at position ", i,
               " is not finite in float16 (|x| must stay below 65520)");
}

// The writer's own aqlm_studio.json fields plus the caller's; a field given twice must agree.
json merged_studio(json base, const json& extra) {
  AQLM_CHECK(extra.is_object(), kAqlmStudioJson, ": the extra fields must be a JSON object, not ", extra.type_name());
  for (const auto& [key, value] : extra.items()) {
    auto it = base.find(key);
    AQLM_CHECK(it == base.end() || *it == value, kAqlmStudioJson, ": field '", key, "' is given as ", value.dump(),
               " but the folder holds ", it->dump());
    base[key] = value;
  }
  return base;
}

json studio_base(const std::string& method, const std::string& config, const std::string& storage) {
  return json{{"format", "aqlm-studio"}, {"format_version", 1}, {"method", method}, {"config", config},
              {"storage", storage}};
}

// The layer being written (its three tensors are consecutive in file order), loaded and
// checked on first use.
class LayerCache {
 public:
  LayerCache(const Model& model, const AqlmLayerSource& source, AqlmConfig config, std::set<std::string> passthrough)
      : model_(model), source_(source), config_(config), passthrough_(std::move(passthrough)) {}

  const QuantizedLayer& get(const std::string& prefix) {
    if (prefix == prefix_) return *layer_;
    layer_.reset();
    prefix_.clear();
    std::shared_ptr<const QuantizedLayer> layer =
        passthrough_.count(prefix) ? std::make_shared<const QuantizedLayer>(read_quantized_layer(model_, prefix))
                                   : source_.load(prefix);
    AQLM_CHECK(layer != nullptr, prefix, ": the layer source returned no layer");
    check_layer(*layer, prefix);
    layer_ = std::move(layer);
    prefix_ = prefix;
    return *layer_;
  }

  void check_layer(const QuantizedLayer& q, const std::string& prefix) const {
    AQLM_CHECK(q.config == config_, prefix, " is ", q.config.name(), " but the folder's AQLM config is ", config_.name(),
               " (one quantization_config per model: quantize it with ", config_.name(), " or keep it dense)");
    const auto [out, in] = projection_shape(model_.config, prefix);
    AQLM_CHECK(q.out_features == out && q.in_features == in, prefix, ": the layer is [", q.out_features, ", ",
               q.in_features, "] but the model's projection is [", out, ", ", in, "]");
    q.validate(prefix);
    check_finite_in_f16(q.codebooks, prefix + ".codebooks");
    check_finite_in_f16(q.scales, prefix + ".scales");
  }

 private:
  const Model& model_;
  const AqlmLayerSource& source_;
  AqlmConfig config_;
  std::set<std::string> passthrough_;
  std::string prefix_;
  std::shared_ptr<const QuantizedLayer> layer_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A view of a float vector under another shape (the file's [M, 2^B, 1, g] / [out, 1, 1, 1]).
TensorView f32_view(const std::vector<float>& values, std::vector<int64_t> shape) {
  return TensorView{DType::F32, std::move(shape), values.data()};
}

}  // namespace

void save_aqlm_folder(const Model& model, const AqlmLayerSource& source, const std::string& out_dir,
                      const FolderWriteOptions& options) {
  const ModelConfig& mc = model.config;
  // Projections the model already holds as AQLM and the source does not replace are kept.
  const std::set<std::string> replaced(source.prefixes.begin(), source.prefixes.end());
  AQLM_CHECK(replaced.size() == source.prefixes.size(), out_dir, ": a projection is listed twice among the quantized layers");
  std::set<std::string> passthrough;
  if (mc.aqlm)
    for (const auto& p : quantized_prefixes(model.weights, mc))
      if (!replaced.count(p)) passthrough.insert(p);
  AQLM_CHECK(!replaced.empty() || !passthrough.empty(), out_dir,
             ": no quantized projection to write (a dense model is written with save_hf_folder)");
  const AqlmConfig config = replaced.empty() ? aqlm_config_of(*mc.aqlm) : source.config;
  AQLM_CHECK(config.nbits >= 1 && config.nbits <= 16 && config.num_codebooks >= 1 && config.group_size >= 1, out_dir,
             ": AQLM config ", config.name(), " cannot be stored (1 to 16 bits per codebook)");
  if (!passthrough.empty() && !replaced.empty()) {
    const AqlmConfig kept = aqlm_config_of(*mc.aqlm);
    AQLM_CHECK(kept == config, *passthrough.begin(), " is ", kept.name(), " but the folder's AQLM config is ",
               config.name(), " (one quantization_config per model: requantize it or replace every AQLM projection)");
  }

  // The quantized projections in file order, with their shapes.
  std::vector<std::string> quantized;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (const auto& p : projection_prefixes(mc)) {
    if (!replaced.count(p) && !passthrough.count(p)) continue;
    quantized.push_back(p);
    shapes.push_back(projection_shape(mc, p));
    AQLM_CHECK(shapes.back().second % config.group_size == 0, p, ": ", shapes.back().second,
               " inputs are not a multiple of the group size ", config.group_size, " (keep this projection dense)");
  }
  for (const auto& p : replaced) projection_shape(mc, p);  // names the prefix that is no projection
  const std::set<std::string> quantized_set(quantized.begin(), quantized.end());
  for (const auto& p : projection_prefixes(mc))
    AQLM_CHECK(quantized_set.count(p) || model.weights.has(p + ".weight"), p,
               " is neither quantized nor kept dense: the model has no tensor ", p, ".weight");

  // Tensors kept dense: everything but the quantized projections' weights (and their old AQLM
  // tensors); a tied model's head is the embedding and has no tensor of its own.
  std::vector<std::string> dense;
  for (const auto& name : model.weights.names()) {
    const size_t dot = name.rfind('.');
    const std::string owner = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string part = dot == std::string::npos ? name : name.substr(dot);
    if (quantized_set.count(owner) && (part == ".weight" || part == ".codes" || part == ".codebooks" || part == ".scales"))
      continue;
    if (mc.tie_word_embeddings && name == "lm_head.weight") continue;
    if (ends_with(name, ".rotary_emb.inv_freq")) continue;
    const TensorView& t = model.weights.get(name);
    AQLM_CHECK(is_float(t.dtype), out_dir, ": tensor ", name, " has dtype ", dtype_name(t.dtype),
               " and is not part of a quantized projection");
    dense.push_back(name);
  }

  // The whole layout checked against the config before anything is written (a projection
  // neither quantized nor dense, a dense tensor of the wrong shape...).
  ModelConfig out_config = mc;
  out_config.torch_dtype = "float16";
  AqlmQuantConfig q;
  q.num_codebooks = config.num_codebooks;
  q.nbits_per_codebook = config.nbits;
  q.in_group_size = config.group_size;
  q.out_group_size = 1;
  out_config.aqlm = q;
  std::vector<HfTensorToWrite> tensors;
  for (const auto& name : dense) {
    const TensorView& t = model.weights.get(name);
    tensors.push_back({{name, DType::F16, t.shape}, [&t](std::vector<uint8_t>&) { return t; }});
  }
  const DType code_dtype = aqlm_code_dtype(config.nbits);
  const int64_t M = config.num_codebooks, K = config.codebook_size(), g = config.group_size;
  auto cache = std::make_shared<LayerCache>(model, source, config, passthrough);
  for (size_t i = 0; i < quantized.size(); ++i) {
    const std::string p = quantized[i];
    const int64_t out = shapes[i].first, in = shapes[i].second;
    tensors.push_back({{p + ".codes", code_dtype, {out, in / g, M}}, [=](std::vector<uint8_t>& scratch) {
                         const QuantizedLayer& layer = cache->get(p);
                         scratch.resize(layer.codes.size() * dtype_size(code_dtype));
                         encode_aqlm_codes(layer.codes.data(), layer.codes.size(), config.nbits, scratch.data(),
                                           p + ".codes");
                         return TensorView{code_dtype, {out, in / g, M}, scratch.data()};
                       }});
    tensors.push_back({{p + ".codebooks", DType::F16, {M, K, 1, g}},
                       [=](std::vector<uint8_t>&) { return f32_view(cache->get(p).codebooks, {M, K, 1, g}); }});
    tensors.push_back({{p + ".scales", DType::F16, {out, 1, 1, 1}},
                       [=](std::vector<uint8_t>&) { return f32_view(cache->get(p).scales, {out, 1, 1, 1}); }});
  }
  WeightStore plan;
  for (const auto& t : tensors) plan.add_view(t.entry.name, TensorView{t.entry.dtype, t.entry.shape, nullptr});
  out_config.validate();
  check_hf_weights(out_config, plan, out_dir);

  // linear_weights_not_to_quantize lists every tensor kept dense, as the authors' converter
  // does (the layers' tensors, then the embedding, norm and head; lm_head.weight always, tied or
  // not). The dense nn.Linear modules are listed by module name too ("lm_head",
  // "model.layers.1.mlp.down_proj"): transformers 4 looks the list up with "<module>.weight",
  // transformers 5 matches it against module names, so only both keep them dense in both.
  std::vector<std::string> listed;
  for (const auto& name : dense)
    if (name.rfind("model.layers.", 0) == 0) listed.push_back(name);
  std::stable_sort(listed.begin(), listed.end(), [](const std::string& a, const std::string& b) {
    const auto layer = [](const std::string& n) { return std::stol(n.substr(13, n.find('.', 13) - 13)); };
    return layer(a) < layer(b);
  });
  for (const auto& name : dense)
    if (name.rfind("model.layers.", 0) != 0 && name != "lm_head.weight") listed.push_back(name);
  listed.push_back("lm_head.weight");
  std::vector<std::string> dense_projections;
  for (const auto& p : projection_prefixes(mc))
    if (!quantized_set.count(p)) dense_projections.push_back(p);
  for (const auto& p : dense_projections) listed.push_back(p);
  listed.push_back("lm_head");
  out_config.aqlm->linear_weights_not_to_quantize = listed;

  int64_t parameters = 0;
  double stored_bits = 0;
  for (const auto& [out, in] : shapes) {
    parameters += out * in;
    stored_bits += 8.0 * double(out * (in / g) * M * int64_t(dtype_size(code_dtype)) + M * K * g * 2 + out * 2);
  }
  json studio = studio_base("aqlm", config.name(), "hf-aqlm");
  studio["quantized_projections"] = quantized.size();
  studio["dense_projections"] = dense_projections;
  studio["quantized_parameters"] = parameters;
  studio["bits_per_parameter"] = aqlm_average_bits_per_parameter(shapes, config);
  studio["stored_bits_per_parameter"] = stored_bits / double(parameters);
  studio = merged_studio(std::move(studio), options.studio);

  write_folder_atomically(out_dir, options.overwrite, [&](const fs::path& temp) {
    write_hf_config_files(model, out_config, temp);
    write_hf_weights(temp, tensors, options.max_shard_bytes);
    write_file_atomic(temp / kAqlmStudioJson, studio.dump(2) + "\n");
  });
}

void save_aqlm_folder(const Model& model, const std::map<std::string, QuantizedLayer>& layers,
                      const std::string& out_dir, const FolderWriteOptions& options) {
  AqlmLayerSource source;
  if (!layers.empty()) {
    // The folder's config is the first layer's in file order, so the one that differs is named.
    std::string first;
    for (const auto& p : projection_prefixes(model.config))
      if (layers.count(p)) {
        first = p;
        break;
      }
    for (const auto& [p, _] : layers) projection_shape(model.config, p);  // names a prefix that is no projection
    source.config = layers.at(first).config;
    for (const auto& p : projection_prefixes(model.config)) {
      auto it = layers.find(p);
      if (it == layers.end()) continue;
      source.prefixes.push_back(p);
      AQLM_CHECK(it->second.config == source.config, p, " is ", it->second.config.name(), " but ", first, " is ",
                 source.config.name(), " (one quantization_config per model: quantize it with ", source.config.name(),
                 " or keep it dense)");
    }
    // Everything checked before the folder is made.
    LayerCache checker(model, source, source.config, {});
    for (const auto& [p, layer] : layers) checker.check_layer(layer, p);
  }
  source.load = [&layers](const std::string& p) {
    return std::shared_ptr<const QuantizedLayer>(std::shared_ptr<const void>(), &layers.at(p));
  };
  save_aqlm_folder(model, source, out_dir, options);
}

void save_dequantized_folder(const Model& model, const std::map<std::string, std::vector<float>>& weights,
                             const DenseQuantization& quantization, const std::string& out_dir,
                             const FolderWriteOptions& options) {
  const ModelConfig& mc = model.config;
  AQLM_CHECK(!mc.aqlm, out_dir, ": the model is AQLM-quantized; dequantized projections go into a dense model");
  AQLM_CHECK(!weights.empty() || !quantization.dequantized_in_model.empty(), out_dir,
             ": no quantized projection to write (a dense model is written with save_hf_folder)");
  AQLM_CHECK(!quantization.method.empty() && !quantization.config.empty(), out_dir,
             ": the quantization method and config must be named for aqlm_studio.json");
  int64_t parameters = 0;
  std::set<std::string> quantized;
  for (const auto& [p, values] : weights) {
    const auto [out, in] = projection_shape(mc, p);
    AQLM_CHECK(int64_t(values.size()) == out * in, p, ": ", values.size(), " dequantized values, expected ", out, " x ",
               in, " = ", out * in);
    AQLM_CHECK(model.weights.has(p + ".weight"), p, ": the model has no dense weight ", p, ".weight to replace");
    check_finite_in_f16(values, p + ".weight");
    parameters += out * in;
    quantized.insert(p);
  }
  for (const auto& p : quantization.dequantized_in_model) {
    const auto [out, in] = projection_shape(mc, p);
    AQLM_CHECK(model.weights.has(p + ".weight"), p, ": the model has no dense weight ", p, ".weight");
    AQLM_CHECK(quantized.insert(p).second, p, ": listed both with new values and as dequantized in the model");
    check_finite_in_f16(model.weights.to_f32(p + ".weight"), p + ".weight");
    parameters += out * in;
  }
  ModelConfig out_config = mc;
  out_config.torch_dtype = "float16";
  std::vector<HfTensorToWrite> tensors;
  WeightStore plan;
  for (const auto& name : model.weights.names()) {
    if (ends_with(name, ".rotary_emb.inv_freq") || (mc.tie_word_embeddings && name == "lm_head.weight")) continue;
    const TensorView& t = model.weights.get(name);
    AQLM_CHECK(is_float(t.dtype), out_dir, ": tensor ", name, " has dtype ", dtype_name(t.dtype),
               " but a dense folder holds float tensors");
    auto replaced = ends_with(name, ".weight") ? weights.find(name.substr(0, name.size() - 7)) : weights.end();
    if (replaced != weights.end()) {
      const std::vector<float>& values = replaced->second;
      tensors.push_back({{name, DType::F16, t.shape}, [&values, &t](std::vector<uint8_t>&) {
                           return TensorView{DType::F32, t.shape, values.data()};
                         }});
    } else {
      tensors.push_back({{name, DType::F16, t.shape}, [&t](std::vector<uint8_t>&) { return t; }});
    }
    plan.add_view(name, TensorView{DType::F16, t.shape, nullptr});
  }
  check_hf_weights(out_config, plan, out_dir);

  std::vector<std::string> dense_projections;
  for (const auto& p : projection_prefixes(mc))
    if (!quantized.count(p)) dense_projections.push_back(p);
  json studio = studio_base(quantization.method, quantization.config, "hf-fp16-dequantized");
  studio["quantized_projections"] = quantized.size();
  studio["dense_projections"] = dense_projections;
  studio["quantized_parameters"] = parameters;
  studio["bits_per_parameter"] = quantization.bits_per_parameter;
  studio = merged_studio(std::move(studio), options.studio);

  write_folder_atomically(out_dir, options.overwrite, [&](const fs::path& temp) {
    write_hf_config_files(model, out_config, temp);
    write_hf_weights(temp, tensors, options.max_shard_bytes);
    write_file_atomic(temp / kAqlmStudioJson, studio.dump(2) + "\n");
  });
}

}  // namespace aqlm
