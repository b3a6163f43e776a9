#include "core/format/aqlm_reader.h"

#include <algorithm>

#include "core/common/error.h"
#include "core/format/aqlm_codes.h"
#include "core/quant/block_trainable.h"

namespace aqlm {

std::vector<std::string> projection_prefixes(const ModelConfig& config) {
  std::vector<std::string> out;
  for (int l = 0; l < config.num_layers; ++l)
    for (const auto& linear : block_linear_names()) out.push_back(layer_prefix(l) + linear);
  return out;
}

std::pair<int64_t, int64_t> projection_shape(const ModelConfig& config, const std::string& prefix) {
  const std::string layers = "model.layers.";
  const size_t dot = prefix.find('.', layers.size());
  const bool layered = prefix.rfind(layers, 0) == 0 && dot != std::string::npos && dot > layers.size() &&
                       dot - layers.size() < 10 &&
                       std::all_of(prefix.begin() + long(layers.size()), prefix.begin() + long(dot), ::isdigit);
  const auto& names = block_linear_names();
  const auto it = layered ? std::find(names.begin(), names.end(), prefix.substr(dot + 1)) : names.end();
  const int layer = layered ? std::stoi(prefix.substr(layers.size(), dot - layers.size())) : -1;
  AQLM_CHECK(it != names.end() && layer < config.num_layers, prefix, " is not a projection of this ",
             config.num_layers, "-layer model (expected model.layers.N.self_attn.q_proj ... mlp.down_proj)");
  const BlockShape shape = BlockShape::from_config(config);
  const auto linear = BlockLinear(it - names.begin());
  return {shape.out_features(linear), shape.in_features(linear)};
}

AqlmConfig aqlm_config_of(const AqlmQuantConfig& q) {
  AQLM_CHECK(q.out_group_size == 1, "AQLM out_group_size ", q.out_group_size, " is not supported (only 1)");
  AqlmConfig c;
  c.num_codebooks = q.num_codebooks;
  c.nbits = q.nbits_per_codebook;
  c.group_size = q.in_group_size;
  return c;
}

std::vector<std::string> quantized_prefixes(const WeightStore& weights, const ModelConfig& config) {
  std::vector<std::string> out;
  for (const auto& p : projection_prefixes(config))
    if (weights.has(p + ".codes")) out.push_back(p);
  return out;
}

QuantizedLayer read_quantized_layer(const WeightStore& weights, const ModelConfig& config, const std::string& prefix) {
  AQLM_CHECK(config.aqlm, prefix, ": the model has no AQLM quantization_config");
  const auto [out, in] = projection_shape(config, prefix);
  QuantizedLayer q;
  q.out_features = out;
  q.in_features = in;
  q.config = aqlm_config_of(*config.aqlm);
  const int64_t M = q.config.num_codebooks, K = q.config.codebook_size(), g = q.config.group_size;
  AQLM_CHECK(in % g == 0, prefix, ": ", in, " inputs are not a multiple of the group size ", g);
  for (const char* part : {".codes", ".codebooks", ".scales"})
    AQLM_CHECK(weights.has(prefix + part), prefix, ": tensor ", prefix, part, " is missing");
  const auto expect_shape = [&](const char* part, const std::vector<int64_t>& shape) {
    const TensorView& t = weights.get(prefix + part);
    AQLM_CHECK(t.shape == shape, prefix, ": tensor ", prefix, part, " has shape ", shape_string(t.shape),
               " but the config needs ", shape_string(shape));
    return t;
  };
  const TensorView codes = expect_shape(".codes", {out, in / g, M});
  const TensorView codebooks = expect_shape(".codebooks", {M, K, 1, g});
  const TensorView scales = expect_shape(".scales", {out, 1, 1, 1});
  for (const auto& [part, t] : {std::pair{".codebooks", codebooks}, std::pair{".scales", scales}})
    AQLM_CHECK(t.dtype == DType::F16 || t.dtype == DType::BF16 || t.dtype == DType::F32, prefix, ": tensor ", prefix,
               part, " has dtype ", dtype_name(t.dtype), " but needs a float type");
  q.codes = decode_aqlm_codes(codes, q.config.nbits, prefix + ".codes");
  q.codebooks.resize(size_t(codebooks.numel()));
  convert_to_f32(codebooks.dtype, codebooks.data, q.codebooks.data(), q.codebooks.size());
  q.scales.resize(size_t(out));
  convert_to_f32(scales.dtype, scales.data, q.scales.data(), q.scales.size());
  return q;
}

}  // namespace aqlm
