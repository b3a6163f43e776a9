#pragma once
// Reading the AQLM layers of a loaded model back into QuantizedLayer form (codes as unsigned
// indices, fp16 codebooks and scales widened to float32 exactly), for tools and tests, and
// the projection names and shapes every format writer and reader shares.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model.h"
#include "core/model/model_config.h"
#include "core/model/weight_store.h"
#include "core/quant/quantized_layer.h"

namespace aqlm {

// The projections of a model of this config, "model.layers.0.self_attn.q_proj", ..., in layer
// order and block_linear_names() order within a layer.
std::vector<std::string> projection_prefixes(const ModelConfig& config);

// [out, in] of the projection PREFIX; Error when PREFIX names no projection of this config.
std::pair<int64_t, int64_t> projection_shape(const ModelConfig& config, const std::string& prefix);

// MxBgG of a quantization_config (Error unless out_group_size is 1).
AqlmConfig aqlm_config_of(const AqlmQuantConfig& q);

// The projections stored as AQLM (PREFIX.codes present), in projection_prefixes() order.
std::vector<std::string> quantized_prefixes(const WeightStore& weights, const ModelConfig& config);

// The AQLM projection PREFIX of an AQLM model (config.aqlm set): codes decoded from their two's
// complement (aqlm_codes.h; out-of-range values refused), codebooks [M, 2^B, 1, g] and scales
// [out, 1, 1, 1] converted to float32. Error naming the tensor when one is missing or its
// shape or dtype does not fit the config.
QuantizedLayer read_quantized_layer(const WeightStore& weights, const ModelConfig& config, const std::string& prefix);
inline QuantizedLayer read_quantized_layer(const Model& model, const std::string& prefix) {
  return read_quantized_layer(model.weights, model.config, prefix);
}

}  // namespace aqlm
