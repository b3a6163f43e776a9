#include "core/model/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <numbers>
#include <optional>

#include "core/common/error.h"
#include "core/common/mapped_file.h"
#include "core/common/thread_pool.h"
#include "core/model/gguf_dequant.h"
#include "core/model/model.h"

namespace aqlm {
using nlohmann::json;

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::Uint8: return "u8";
    case GgufType::Int8: return "i8";
    case GgufType::Uint16: return "u16";
    case GgufType::Int16: return "i16";
    case GgufType::Uint32: return "u32";
    case GgufType::Int32: return "i32";
    case GgufType::Float32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::Uint64: return "u64";
    case GgufType::Int64: return "i64";
    case GgufType::Float64: return "f64";
  }
  return "?";
}

namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Reads little-endian values from the mapped bytes; every read checks the bounds and names
// what it was reading when the file ends early.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += size_t(n);
    return s;
  }

  void need(uint64_t n, const std::string& what) const {
    AQLM_CHECK(n <= remaining(), path_, ": truncated: ", what, " needs ", n, " bytes at byte ", pos_,
               " but the file has ", size_);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// Smallest encoded size of one value of a type: bounds an array's element count before reading.
size_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::Uint8:
    case GgufType::Int8:
    case GgufType::Bool: return 1;
    case GgufType::Uint16:
    case GgufType::Int16: return 2;
    case GgufType::Uint32:
    case GgufType::Int32:
    case GgufType::Float32:
    case GgufType::Array: return 4;
    default: return 8;
  }
}

// A float32 as the double of its shortest round-tripping decimal: rms_norm_eps stored as f32
// reads back as 1e-05 (as config.json has it), not 9.999999747378752e-06.
double shortest_decimal(float f) {
  if (!std::isfinite(f)) return double(f);
  char buffer[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, double(f));
    if (std::strtof(buffer, nullptr) == f) return std::strtod(buffer, nullptr);
  }
  return double(f);
}

// `in_array`: float32 array elements (tokenizer scores) keep their exact value, since a consumer
// turning them back into float32 must get the very same bits.
json read_scalar(Cursor& c, GgufType t, const std::string& what, const std::string& path, bool in_array = false) {
  switch (t) {
    case GgufType::Uint8: return c.read<uint8_t>(what);
    case GgufType::Int8: return c.read<int8_t>(what);
    case GgufType::Uint16: return c.read<uint16_t>(what);
    case GgufType::Int16: return c.read<int16_t>(what);
    case GgufType::Uint32: return c.read<uint32_t>(what);
    case GgufType::Int32: return c.read<int32_t>(what);
    case GgufType::Float32: {
      const float f = c.read<float>(what);
      return in_array ? double(f) : shortest_decimal(f);
    }
    case GgufType::Bool: {
      const uint8_t b = c.read<uint8_t>(what);
      AQLM_CHECK(b <= 1, path, ": ", what, ": bool value ", int(b), " is neither 0 nor 1");
      return b == 1;
    }
    case GgufType::String: return c.read_string(what);
    case GgufType::Uint64: return c.read<uint64_t>(what);
    case GgufType::Int64: return c.read<int64_t>(what);
    case GgufType::Float64: return c.read<double>(what);
    case GgufType::Array: break;
  }
  fail(path, ": ", what, ": unknown value type ", uint32_t(t));
}

bool valid_value_type(uint32_t t) { return t <= uint32_t(GgufType::Float64); }

}  // namespace

std::vector<int64_t> GgufTensorInfo::hf_shape() const { return std::vector<int64_t>(ne.rbegin(), ne.rend()); }

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  auto file = std::make_shared<MappedFile>(path);
  file_ = file;
  Cursor c(file->data(), file->size(), path);
  AQLM_CHECK(file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0, path,
             ": not a GGUF file (bad magic: expected \"GGUF\")");
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("version");
  AQLM_CHECK(version_ != 0x02000000u && version_ != 0x03000000u, path,
             ": big-endian GGUF files are not supported");
  AQLM_CHECK(version_ == 2 || version_ == 3, path, ": GGUF version ", version_, " is not supported (supported: 2, 3)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key-value takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info at least 8 + 4 + 4 + 8.
  AQLM_CHECK(n_kv <= c.remaining() / 13 && n_tensors <= c.remaining() / 24, path, ": corrupt header: ", n_kv,
             " metadata entries and ", n_tensors, " tensors cannot fit in ", file->size(), " bytes");

  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKv kv;
    kv.key = c.read_string(str("metadata key #", i));
    const std::string what = "metadata " + kv.key;
    const uint32_t type = c.read<uint32_t>(what);
    AQLM_CHECK(valid_value_type(type), path, ": ", what, ": unknown value type ", type);
    kv.type = GgufType(type);
    if (kv.type == GgufType::Array) {
      const uint32_t element = c.read<uint32_t>(what);
      AQLM_CHECK(valid_value_type(element) && element != uint32_t(GgufType::Array), path, ": ", what,
                 ": unsupported array element type ", element);
      kv.element_type = GgufType(element);
      const uint64_t count = c.read<uint64_t>(what);
      c.need(count > c.remaining() ? count : count * min_encoded_size(kv.element_type), what);
      kv.value = json::array();
      auto& array = kv.value.get_ref<json::array_t&>();
      array.reserve(size_t(count));
      for (uint64_t k = 0; k < count; ++k) array.push_back(read_scalar(c, kv.element_type, what, path, true));
    } else {
      kv.value = read_scalar(c, kv.type, what, path);
    }
    AQLM_CHECK(!find(kv.key), path, ": metadata key ", kv.key, " appears twice");
    kvs_.push_back(std::move(kv));
  }

  if (const GgufKv* a = find("general.alignment")) {
    AQLM_CHECK(a->value.is_number_unsigned() && a->value.get<uint64_t>() > 0 &&
                   (a->value.get<uint64_t>() & (a->value.get<uint64_t>() - 1)) == 0 && a->value.get<uint64_t>() <= 65536,
               path, ": general.alignment must be a power of two up to 65536");
    alignment_ = a->value.get<size_t>();
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.read_string(str("tensor info #", i));
    const std::string what = "tensor info of " + t.name;
    const uint32_t n_dims = c.read<uint32_t>(what);
    AQLM_CHECK(n_dims >= 1 && n_dims <= kMaxDims, path, ": tensor ", t.name, ": ", n_dims, " dimensions (1 to ",
               kMaxDims, " allowed)");
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = c.read<uint64_t>(what);
      AQLM_CHECK(n <= uint64_t(std::numeric_limits<int64_t>::max()), path, ": tensor ", t.name, ": dimension ", n,
                 " is too large");
      t.ne.push_back(int64_t(n));
    }
    t.type = c.read<uint32_t>(what);
    t.offset = c.read<uint64_t>(what);
    AQLM_CHECK(!find_tensor(t.name), path, ": tensor ", t.name, " appears twice");
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;

  for (auto& t : tensors_) {
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    AQLM_CHECK(info, path, ": tensor ", t.name, " has unknown GGML type ", t.type);
    AQLM_CHECK(t.ne[0] % info->block_size == 0, path, ": tensor ", t.name, ": row length ", t.ne[0],
               " is not a whole number of ", info->name, " blocks of ", info->block_size);
    // bytes = ne0 / block * type_size * ne1 * ne2 * ne3, without overflow: bounded by the file size.
    const uint64_t limit = file->size();
    uint64_t bytes = uint64_t(t.ne[0] / info->block_size) * uint64_t(info->type_size);
    for (size_t d = 1; d < t.ne.size(); ++d) {
      const uint64_t n = uint64_t(t.ne[d]);
      bytes = (n != 0 && bytes > limit / n) ? limit + 1 : bytes * n;
    }
    AQLM_CHECK(t.offset % alignment_ == 0, path, ": tensor ", t.name, ": offset ", t.offset,
               " is not a multiple of the alignment ", alignment_);
    const uint64_t begin = uint64_t(data_offset_) + t.offset;
    AQLM_CHECK(t.offset <= limit && bytes <= limit && begin + bytes <= limit, path, ": truncated: tensor ", t.name,
               " ends at byte ", bytes > limit ? std::string("(beyond any file size)") : std::to_string(begin + bytes),
               " but the file has ", file->size());
    t.data = file->data() + begin;
    t.nbytes = size_t(bytes);
  }
}

const GgufKv* GgufFile::find(const std::string& key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufKv* kv = find(key);
  AQLM_CHECK(kv, path_, ": metadata key ", key, " is missing");
  AQLM_CHECK(kv->value.is_string(), path_, ": metadata ", key, " should be a string but is ", gguf_type_name(kv->type));
  return kv->value.get<std::string>();
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufKv* kv = find(key);
  AQLM_CHECK(kv, path_, ": metadata key ", key, " is missing");
  AQLM_CHECK(kv->value.is_number_integer(), path_, ": metadata ", key, " should be an integer but is ",
             gguf_type_name(kv->type));
  AQLM_CHECK(!kv->value.is_number_unsigned() || kv->value.get<uint64_t>() <= uint64_t(INT64_MAX), path_, ": metadata ",
             key, " is too large");
  return kv->value.get<int64_t>();
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}

double GgufFile::get_float_or(const std::string& key, double fallback) const {
  const GgufKv* kv = find(key);
  if (!kv) return fallback;
  AQLM_CHECK(kv->value.is_number(), path_, ": metadata ", key, " should be a number but is ", gguf_type_name(kv->type));
  return kv->value.get<double>();
}

std::string gguf_value_summary(const GgufKv& kv) {
  auto text = [](const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); };
  if (kv.type != GgufType::Array) return text(kv.value);
  constexpr size_t kShown = 8;
  const size_t n = kv.value.size();
  if (n <= kShown) return text(kv.value);
  std::string out = "[" + std::to_string(n) + " " + gguf_type_name(kv.element_type) + ": ";
  for (size_t i = 0; i < kShown; ++i) out += text(kv.value[i]) + ", ";
  return out + "...]";
}

// ---------------------------------------------------------------------------------------------
// From GGUF names and metadata to a Hugging Face model

namespace {

// "blk.12.attn_q.weight" -> "model.layers.12.self_attn.q_proj.weight"; nullopt for a tensor
// the runtime has no use for (rope_freqs, legacy rotary tables); Error for anything unknown.
std::optional<std::string> hf_tensor_name(const std::string& name, Architecture arch, const std::string& path) {
  static const std::map<std::string, std::string> global = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  static const std::map<std::string, std::string> per_layer = {
      {"attn_norm", "input_layernorm"},    {"attn_q", "self_attn.q_proj"},    {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},         {"ffn_down", "mlp.down_proj"},
  };
  if (auto it = global.find(name); it != global.end()) return it->second;
  if (name == "rope_freqs.weight") return std::nullopt;
  if (name.rfind("blk.", 0) == 0) {
    const size_t dot = name.find('.', 4);
    const size_t last = name.rfind('.');
    if (dot != std::string::npos && last > dot) {
      const std::string layer = name.substr(4, dot - 4);
      const std::string part = name.substr(dot + 1, last - dot - 1);
      const std::string kind = name.substr(last + 1);
      const bool numeric = !layer.empty() && std::all_of(layer.begin(), layer.end(), ::isdigit);
      if (numeric && part == "attn_rot_embd") return std::nullopt;  // legacy precomputed rotary table
      auto it = per_layer.find(part);
      const bool is_bias = kind == "bias";
      const bool bias_allowed = arch == Architecture::Qwen2 && (part == "attn_q" || part == "attn_k" || part == "attn_v");
      if (numeric && it != per_layer.end() && (kind == "weight" || (is_bias && bias_allowed)))
        return layer_prefix(std::stoi(layer)) + it->second + "." + kind;
    }
  }
  fail(path, ": tensor ", name, " is not part of a ", architecture_name(arch), " model");
}

// Llama 3.1's rope scaling, as transformers computes it: the factor each frequency is divided by.
std::vector<double> llama3_rope_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  std::vector<double> out;
  for (int i = 0; i < c.head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, 2.0 * i / c.head_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0);
    } else if (wavelen > low_wavelen) {
      out.push_back(s.factor);
    } else {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back(1.0 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return out;
}

// llama.cpp writes Llama 3.1's scaling as a rope_freqs tensor; metadata carries at most the
// original context length. The factor is the tensor's largest entry; the low/high frequency
// factors are taken as Llama 3.1's (1, 4) and the whole tensor is checked against them.
void read_llama3_rope_scaling(const GgufFile& f, const std::string& arch, const GgufTensorInfo& freqs, ModelConfig& c) {
  AQLM_CHECK(freqs.numel() == c.head_dim / 2, f.path(), ": tensor rope_freqs.weight has ", freqs.numel(),
             " entries but head_dim / 2 is ", c.head_dim / 2);
  std::vector<float> values(size_t(freqs.numel()));
  dequantize_ggml(freqs.type, freqs.data, values.data(), values.size());
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = *std::max_element(values.begin(), values.end());
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings =
      int(f.get_int_or(arch + ".rope.scaling.original_context_length", 8192));
  const std::vector<double> expected = llama3_rope_factors(c);
  for (size_t i = 0; i < values.size(); ++i)
    AQLM_CHECK(std::abs(values[i] - expected[i]) <= 1e-4 * expected[i], f.path(), ": rope_freqs.weight[", i, "] = ",
               values[i], " does not follow Llama-3 rope scaling (factor ", c.rope_scaling.factor,
               ", low/high frequency factors 1/4, original context ", c.rope_scaling.original_max_position_embeddings,
               "): expected ", expected[i]);
}

ModelConfig config_from_metadata(const GgufFile& f, const std::string& arch_name, Architecture arch) {
  const std::string& p = f.path();
  const std::string a = arch_name + ".";
  ModelConfig c;
  c.arch = arch;
  c.hidden_size = int(f.get_int(a + "embedding_length"));
  c.intermediate_size = int(f.get_int(a + "feed_forward_length"));
  c.num_layers = int(f.get_int(a + "block_count"));
  c.num_heads = int(f.get_int(a + "attention.head_count"));
  c.num_kv_heads = int(f.get_int_or(a + "attention.head_count_kv", c.num_heads));
  c.head_dim = int(f.get_int_or(a + "attention.key_length", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0));
  c.max_position_embeddings = int(f.get_int_or(a + "context_length", 2048));
  c.rope_theta = f.get_float_or(a + "rope.freq_base", 10000.0);
  c.rms_norm_eps = f.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5);
  c.attention_bias = arch == Architecture::Qwen2;
  c.torch_dtype = "float32";  // dequantized values are exact in float32

  const GgufTensorInfo* embed = f.find_tensor("token_embd.weight");
  AQLM_CHECK(embed, p, ": tensor token_embd.weight is missing");
  AQLM_CHECK(embed->ne.size() == 2 && embed->ne[0] == c.hidden_size, p, ": tensor token_embd.weight has shape ",
             shape_string(embed->hf_shape()), " but embedding_length is ", c.hidden_size);
  c.vocab_size = int(embed->ne[1]);
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;

  if (const GgufKv* type = f.find(a + "rope.scaling.type")) {
    const std::string t = type->value.is_string() ? type->value.get<std::string>() : "";
    if (t == "linear") {
      c.rope_scaling.type = "linear";
      c.rope_scaling.factor = f.get_float_or(a + "rope.scaling.factor", 1.0);
    } else if (t == "llama3") {
      AQLM_CHECK(f.find_tensor("rope_freqs.weight"), p, ": rope scaling 'llama3' without the rope_freqs.weight tensor");
    } else {
      AQLM_CHECK(t == "none" || t.empty(), p, ": rope scaling '", t, "' is not supported (supported: linear, llama3)");
    }
  }
  if (const GgufTensorInfo* freqs = f.find_tensor("rope_freqs.weight")) {
    AQLM_CHECK(c.rope_scaling.type.empty(), p, ": rope_freqs.weight and rope scaling '", c.rope_scaling.type,
               "' cannot both apply");
    read_llama3_rope_scaling(f, arch_name, *freqs, c);
  }

  c.bos_token_id = int(f.get_int_or("tokenizer.ggml.bos_token_id", -1));
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int64_t id = f.get_int_or(key, -1);
    if (id >= 0 && std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), int(id)) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(int(id));
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail(p, ": ", e.what());
  }
  return c;
}

// Expected HF shape of a tensor, from the config; Error naming both shapes when they differ.
void check_shape(const std::string& path, const std::string& gguf_name, const std::string& hf_name,
                 const std::vector<int64_t>& shape, const ModelConfig& c) {
  const int64_t h = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  std::vector<int64_t> expected;
  auto ends_with = [&](const char* s) {
    const std::string suffix = s;
    return hf_name.size() >= suffix.size() && hf_name.compare(hf_name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (hf_name == "model.embed_tokens.weight" || hf_name == "lm_head.weight") expected = {v, h};
  else if (hf_name == "model.norm.weight" || ends_with("layernorm.weight")) expected = {h};
  else if (ends_with("q_proj.weight")) expected = {q, h};
  else if (ends_with("k_proj.weight") || ends_with("v_proj.weight")) expected = {kv, h};
  else if (ends_with("o_proj.weight")) expected = {h, q};
  else if (ends_with("gate_proj.weight") || ends_with("up_proj.weight")) expected = {f, h};
  else if (ends_with("down_proj.weight")) expected = {h, f};
  else if (ends_with("q_proj.bias")) expected = {q};
  else if (ends_with("k_proj.bias") || ends_with("v_proj.bias")) expected = {kv};
  AQLM_CHECK(shape == expected, path, ": tensor ", gguf_name, " has shape ", shape_string(shape), " but the config needs ",
             shape_string(expected));
}

}  // namespace

GgufWeights load_gguf_weights(const std::string& path) {
  const GgufFile f(path);
  GgufWeights out;
  const std::string arch_name = f.get_string("general.architecture");
  Architecture arch;
  if (arch_name == "llama") {
    arch = Architecture::Llama;
  } else if (arch_name == "qwen2") {
    arch = Architecture::Qwen2;
  } else {
    fail(path, ": architecture '", arch_name, "' is not supported (supported: llama (incl. Mistral), qwen2)");
  }
  out.config = config_from_metadata(f, arch_name, arch);
  const ModelConfig& c = out.config;

  for (const auto& kv : f.metadata()) {
    out.metadata.emplace_back(kv.key, gguf_value_summary(kv));
    if (kv.key.rfind("tokenizer.ggml.", 0) == 0) out.tokenizer_keys[kv.key] = kv.value;
  }
  if (const GgufKv* t = f.find("tokenizer.chat_template")) out.chat_template = f.get_string(t->key);

  const std::shared_ptr<const void> owner = f.mapping();
  for (const auto& t : f.tensors()) {
    const std::optional<std::string> name = hf_tensor_name(t.name, arch, path);
    if (!name) continue;
    const std::vector<int64_t> shape = t.hf_shape();
    check_shape(path, t.name, *name, shape, c);
    const GgmlTypeInfo* info = ggml_type_info(t.type);
    AQLM_CHECK(info->dequantizable, path, ": tensor ", t.name, " has GGML type ", info->name,
               ", which cannot be read (supported: ", dequantizable_ggml_types(), ")");
    // GGUF llama stores q/k rows in the interleaved RoPE layout (llama.cpp's converter permutes them).
    const bool is_q = name->find("self_attn.q_proj.") != std::string::npos;
    const bool is_k = name->find("self_attn.k_proj.") != std::string::npos;
    const bool unpermute = arch == Architecture::Llama && (is_q || is_k);
    const int heads = is_q ? c.num_heads : c.num_kv_heads;
    const bool plain = t.type == 0 || t.type == 1 || t.type == 30;  // F32, F16, BF16
    const DType plain_dtype = t.type == 0 ? DType::F32 : t.type == 1 ? DType::F16 : DType::BF16;
    if (plain && !unpermute && reinterpret_cast<uintptr_t>(t.data) % dtype_size(plain_dtype) == 0) {
      out.weights.add_view(*name, TensorView{plain_dtype, shape, t.data}, owner);
      continue;
    }
    if (plain) {
      std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
      const int64_t cols = shape.size() == 2 ? shape[1] : 1;
      if (unpermute) unpermute_rope_rows_raw(bytes.data(), int(shape[0]), size_t(cols) * dtype_size(plain_dtype), heads);
      out.weights.add_owned(*name, plain_dtype, shape, std::move(bytes));
      continue;
    }
    std::vector<uint8_t> bytes(size_t(t.numel()) * sizeof(float));
    float* values = reinterpret_cast<float*>(bytes.data());
    if (t.numel() == 0) {
      out.weights.add_owned(*name, DType::F32, shape, std::move(bytes));
      continue;
    }
    // Rows dequantize independently; split them over the threads.
    const int64_t row = t.ne[0];
    const size_t row_bytes = t.nbytes / size_t(t.numel() / row);
    ThreadPool::global().parallel_for(
        size_t(t.numel() / row),
        [&](size_t begin, size_t end, int) {
          dequantize_ggml(t.type, t.data + begin * row_bytes, values + begin * size_t(row), (end - begin) * size_t(row));
        },
        16);
    if (unpermute) unpermute_rope_rows(values, int(shape[0]), int(shape.size() == 2 ? shape[1] : 1), heads);
    out.weights.add_owned(*name, DType::F32, shape, std::move(bytes));
  }
  // Every tensor a decoder needs, named as the GGUF file would name it.
  std::vector<std::pair<std::string, std::string>> required = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                               {"output_norm.weight", "model.norm.weight"}};
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    for (const auto& [gguf_part, hf_part] : std::vector<std::pair<std::string, std::string>>{
             {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"}, {"attn_q", "self_attn.q_proj"},
             {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"}, {"attn_output", "self_attn.o_proj"},
             {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}}) {
      required.emplace_back(blk + gguf_part + ".weight", layer_prefix(l) + hf_part + ".weight");
      if (c.attention_bias && (gguf_part == "attn_q" || gguf_part == "attn_k" || gguf_part == "attn_v"))
        required.emplace_back(blk + gguf_part + ".bias", layer_prefix(l) + hf_part + ".bias");
    }
  }
  for (const auto& [gguf_name, hf_name] : required)
    AQLM_CHECK(out.weights.has(hf_name), path, ": tensor ", gguf_name, " is missing");
  return out;
}

}  // namespace aqlm
