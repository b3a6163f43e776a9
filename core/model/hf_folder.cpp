#include "core/model/hf_folder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/model/safetensors.h"
#include "core/text/tokenizer.h"

namespace aqlm {
namespace fs = std::filesystem;
using nlohmann::json;

std::optional<DType> dtype_from_torch_name(const std::string& torch_dtype) {
  if (torch_dtype == "float16") return DType::F16;
  if (torch_dtype == "bfloat16") return DType::BF16;
  if (torch_dtype == "float32") return DType::F32;
  return std::nullopt;
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    default: return "?";
  }
}

namespace {

bool is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64; }

json read_json(const fs::path& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON (", e.what(), ")");
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Checks one tensor's presence, shape and dtype (`exact_dtype`, else any float type);
// removes it from `unseen`.
void expect_tensor(const WeightStore& w, std::set<std::string>& unseen, const std::string& where, const std::string& name,
                   const std::vector<int64_t>& shape, std::optional<DType> exact_dtype = std::nullopt) {
  AQLM_CHECK(w.has(name), where, ": tensor ", name, " is missing");
  const TensorView& t = w.get(name);
  AQLM_CHECK(t.shape == shape, where, ": tensor ", name, " has shape ", shape_string(t.shape), " but the config needs ",
             shape_string(shape));
  if (exact_dtype) {
    AQLM_CHECK(t.dtype == *exact_dtype, where, ": tensor ", name, " has dtype ", dtype_name(t.dtype), " but needs ",
               dtype_name(*exact_dtype));
  } else {
    AQLM_CHECK(is_float(t.dtype), where, ": tensor ", name, " has dtype ", dtype_name(t.dtype),
               " but needs a float type (F32, F16, BF16)");
  }
  unseen.erase(name);
}

// An AQLM linear P: P.codes, P.codebooks, P.scales (REFERENCE.md section 5).
void expect_aqlm_linear(const WeightStore& w, std::set<std::string>& unseen, const std::string& where,
                        const std::string& p, int64_t out, int64_t in, const AqlmQuantConfig& q) {
  AQLM_CHECK(in % q.in_group_size == 0, where, ": ", p, ": ", in, " inputs are not a multiple of in_group_size ",
             q.in_group_size);
  const DType code_dtype = q.nbits_per_codebook <= 8 ? DType::I8 : DType::I16;
  expect_tensor(w, unseen, where, p + ".codes", {out, in / q.in_group_size, q.num_codebooks}, code_dtype);
  expect_tensor(w, unseen, where, p + ".codebooks",
                {q.num_codebooks, int64_t(1) << q.nbits_per_codebook, 1, q.in_group_size});
  expect_tensor(w, unseen, where, p + ".scales", {out, 1, 1, 1});
}

}  // namespace

void check_hf_weights(const ModelConfig& c, WeightStore& w, const std::string& where) {
  for (const auto& name : w.names())
    if (ends_with(name, ".rotary_emb.inv_freq")) w.remove(name);
  if (c.tie_word_embeddings) w.remove("lm_head.weight");

  const std::vector<std::string> all = w.names();
  std::set<std::string> unseen(all.begin(), all.end());
  const int64_t h = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim(), v = c.vocab_size;
  expect_tensor(w, unseen, where, "model.embed_tokens.weight", {v, h});
  expect_tensor(w, unseen, where, "model.norm.weight", {h});
  if (!c.tie_word_embeddings) expect_tensor(w, unseen, where, "lm_head.weight", {v, h});
  const std::map<std::string, std::pair<int64_t, int64_t>> linear_shape = {
      {"self_attn.q_proj", {q, h}}, {"self_attn.k_proj", {kv, h}}, {"self_attn.v_proj", {kv, h}},
      {"self_attn.o_proj", {h, q}}, {"mlp.gate_proj", {f, h}},     {"mlp.up_proj", {f, h}},
      {"mlp.down_proj", {h, f}}};
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string prefix = layer_prefix(l);
    expect_tensor(w, unseen, where, prefix + "input_layernorm.weight", {h});
    expect_tensor(w, unseen, where, prefix + "post_attention_layernorm.weight", {h});
    for (const auto& linear : block_linear_names()) {
      const std::string p = prefix + linear;
      const auto [out, in] = linear_shape.at(linear);
      if (c.aqlm && !w.has(p + ".weight")) {
        expect_aqlm_linear(w, unseen, where, p, out, in, *c.aqlm);
      } else {
        AQLM_CHECK(!w.has(p + ".codes"), where, ": ", p, " has both a dense weight and AQLM codes");
        expect_tensor(w, unseen, where, p + ".weight", {out, in});
      }
      const bool has_bias = c.attention_bias && (linear == "self_attn.q_proj" || linear == "self_attn.k_proj" ||
                                                 linear == "self_attn.v_proj");
      if (has_bias) expect_tensor(w, unseen, where, p + ".bias", {out});
    }
  }
  AQLM_CHECK(unseen.empty(), where, ": tensor ", unseen.empty() ? "" : *unseen.begin(), " is not part of a ",
             architecture_name(c.arch), " model with this config");
}

HfWeights load_hf_weights(const std::string& dir) {
  AQLM_CHECK(fs::is_directory(dir), dir, ": not a folder");
  const fs::path config_path = fs::path(dir) / "config.json";
  AQLM_CHECK(fs::exists(config_path), dir, ": config.json is missing (not a Hugging Face model folder)");
  HfWeights out;
  out.config = ModelConfig::from_hf_json(read_json(config_path), config_path.string());
  const fs::path generation = fs::path(dir) / "generation_config.json";
  if (fs::exists(generation)) {
    const json g = read_json(generation);
    std::vector<int> ids;
    if (g.contains("eos_token_id") && g["eos_token_id"].is_number_integer()) ids.push_back(g["eos_token_id"].get<int>());
    if (g.contains("eos_token_id") && g["eos_token_id"].is_array())
      for (const auto& id : g["eos_token_id"])
        if (id.is_number_integer()) ids.push_back(id.get<int>());
    for (int id : ids)
      if (std::find(out.config.eos_token_ids.begin(), out.config.eos_token_ids.end(), id) == out.config.eos_token_ids.end())
        out.config.eos_token_ids.push_back(id);
    if (out.config.bos_token_id < 0 && g.contains("bos_token_id") && g["bos_token_id"].is_number_integer())
      out.config.bos_token_id = g["bos_token_id"].get<int>();
  }
  out.metadata = load_safetensors_folder(dir, out.weights);
  check_hf_weights(out.config, out.weights, dir);
  return out;
}

std::unique_ptr<Model> load_hf_folder(const std::string& dir, const LoadOptions& options) {
  HfWeights hf = load_hf_weights(dir);
  auto model = std::make_unique<Model>();
  model->config = std::move(hf.config);
  model->weights = std::move(hf.weights);
  model->format = model->config.aqlm ? ModelFormat::HuggingFaceAqlm : ModelFormat::HuggingFace;
  model->source_path = dir;
  for (const auto& [key, value] : hf.metadata) model->metadata.emplace_back(key, value);

  const fs::path tokenizer_path = fs::path(dir) / "tokenizer.json";
  const fs::path tokenizer_config_path = fs::path(dir) / "tokenizer_config.json";
  std::optional<json> tokenizer_config;
  if (fs::exists(tokenizer_config_path)) tokenizer_config = read_json(tokenizer_config_path);
  if (options.load_tokenizer) {
    AQLM_CHECK(fs::exists(tokenizer_path), dir,
               ": tokenizer.json is missing (only the Hugging Face fast-tokenizer file is supported)");
    TokenizerSpec spec = tokenizer_spec_from_hf_json(read_json(tokenizer_path),
                                                     tokenizer_config ? &*tokenizer_config : nullptr,
                                                     tokenizer_path.string());
    model->tokenizer = make_tokenizer(std::move(spec));
  }
  // The chat template: tokenizer_config.json (a string, or a list of named templates), else
  // the chat_template.jinja file newer transformers versions write.
  if (tokenizer_config && tokenizer_config->contains("chat_template")) {
    const json& t = (*tokenizer_config)["chat_template"];
    if (t.is_string()) {
      model->chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      for (const auto& entry : t) {
        if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string()) continue;
        if (model->chat_template.empty() || entry.value("name", "") == "default")
          model->chat_template = entry["template"].get<std::string>();
      }
    }
  }
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (model->chat_template.empty() && fs::exists(jinja)) model->chat_template = read_text_file(jinja);
  return model;
}

// ---------------------------------------------------------------------------------------------
// Writing

namespace {

// The embedding, then the layers in numeric order (model.layers.2 before model.layers.10), then
// the rest, lm_head last: shards then hold whole, consecutive layers, as transformers writes them.
bool natural_less(const std::string& a, const std::string& b) {
  auto key = [](const std::string& name) {
    const std::string prefix = "model.layers.";
    if (name == "model.embed_tokens.weight") return std::make_tuple(0, 0L, name);
    if (name.rfind(prefix, 0) != 0) return std::make_tuple(name.rfind("lm_head.", 0) == 0 ? 3 : 2, 0L, name);
    const size_t dot = name.find('.', prefix.size());
    const std::string number = name.substr(prefix.size(), dot - prefix.size());
    const bool numeric = !number.empty() && number.size() < 10 && std::all_of(number.begin(), number.end(), ::isdigit);
    return std::make_tuple(1, numeric ? std::stol(number) : 0L, name);
  };
  return key(a) < key(b);
}

void fsync_folder(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string temp_name(const fs::path& out, const char* kind) {
  static std::atomic<int> counter{0};
  return "." + out.filename().string() + "." + kind + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

void write_json(const fs::path& path, const json& j) { write_file_atomic(path, j.dump(2) + "\n"); }

}  // namespace

void write_hf_weights(const fs::path& dir, std::vector<HfTensorToWrite> tensors, size_t max_shard_bytes) {
  std::sort(tensors.begin(), tensors.end(),
            [](const HfTensorToWrite& a, const HfTensorToWrite& b) { return natural_less(a.entry.name, b.entry.name); });
  // Consecutive tensors fill a shard until the next would pass max_shard_bytes.
  std::vector<std::vector<HfTensorToWrite>> shards(1);
  size_t shard_bytes = 0, total_bytes = 0;
  for (auto& t : tensors) {
    if (!shards.back().empty() && shard_bytes + t.entry.nbytes() > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shard_bytes += t.entry.nbytes();
    total_bytes += t.entry.nbytes();
    shards.back().push_back(std::move(t));
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};  // transformers requires it
  json weight_map = json::object();
  std::vector<uint8_t> scratch;
  for (size_t s = 0; s < shards.size(); ++s) {
    char file_name[64];
    std::snprintf(file_name, sizeof(file_name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : file_name;
    std::vector<SafetensorsEntry> entries;
    for (const auto& t : shards[s]) entries.push_back(t.entry);
    SafetensorsWriter writer((dir / file).string(), entries, metadata);
    for (const auto& t : shards[s]) {
      writer.write(t.entry.name, t.data(scratch));
      weight_map[t.entry.name] = file;
    }
    writer.finish();
  }
  if (shards.size() > 1)
    write_json(dir / "model.safetensors.index.json",
               json{{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}});
}

void write_hf_config_files(const Model& model, ModelConfig config, const fs::path& dir) {
  if (config.eos_token_ids.empty() && model.tokenizer && model.tokenizer->eos_id() >= 0)
    config.eos_token_ids = {model.tokenizer->eos_id()};
  if (config.bos_token_id < 0 && model.tokenizer && model.tokenizer->bos_id() >= 0)
    config.bos_token_id = model.tokenizer->bos_id();
  write_json(dir / "config.json", config.to_hf_json());
  if (model.tokenizer) {
    write_json(dir / "tokenizer.json", tokenizer_spec_to_hf_json(model.tokenizer->spec()));
    write_json(dir / "tokenizer_config.json",
               tokenizer_spec_to_hf_config(model.tokenizer->spec(), model.chat_template, config.max_position_embeddings));
  }
  json generation = {{"_from_model_config", true}};
  if (config.bos_token_id >= 0) generation["bos_token_id"] = config.bos_token_id;
  if (config.eos_token_ids.size() == 1) generation["eos_token_id"] = config.eos_token_ids[0];
  if (config.eos_token_ids.size() > 1) generation["eos_token_id"] = config.eos_token_ids;
  write_json(dir / "generation_config.json", generation);
}

namespace {

fs::path normalized_out_path(const std::string& out_dir) {
  AQLM_CHECK(!out_dir.empty(), "save: the output folder name is empty");
  fs::path out = fs::path(out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();  // "dir/" -> "dir"
  AQLM_CHECK(!out.filename().empty() && out.filename() != "." && out.filename() != "..", out_dir,
             ": cannot write a model to this path (name a new folder)");
  return out;
}

}  // namespace

void write_folder_atomically(const std::string& out_dir, bool overwrite, const std::function<void(const fs::path&)>& fill) {
  const fs::path out = normalized_out_path(out_dir);
  const bool exists = fs::exists(out);
  AQLM_CHECK(!exists || overwrite, out.string(), ": already exists (choose another folder or allow overwriting)");
  AQLM_CHECK(!exists || fs::is_directory(out), out.string(), ": exists and is not a folder");
  fs::path parent = out.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  fs::create_directories(parent, ec);
  AQLM_CHECK(!ec, parent.string(), ": cannot create the folder: ", ec.message());

  const fs::path temp = parent / temp_name(out, "partial");
  try {
    fs::create_directory(temp, ec);
    AQLM_CHECK(!ec, temp.string(), ": cannot create the folder: ", ec.message());
    fill(temp);
    fsync_folder(temp);

    // Into place: the old folder (when overwriting) moves aside first and goes only after the
    // new one is in place, so a failure here leaves one complete model under OUT_DIR.
    fs::path old;
    if (exists) {
      old = parent / temp_name(out, "old");
      fs::rename(out, old, ec);
      AQLM_CHECK(!ec, out.string(), ": cannot move the existing folder aside: ", ec.message());
    }
    fs::rename(temp, out, ec);
    if (ec) {
      const std::string reason = ec.message();
      if (exists) fs::rename(old, out, ec);
      fail(out.string(), ": cannot move the written model into place: ", reason);
    }
    fsync_folder(parent);
    if (exists) fs::remove_all(old, ec);
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
}

void save_hf_folder(const Model& model, const std::string& out_dir, const SaveOptions& options) {
  const fs::path out = normalized_out_path(out_dir);
  // Unset: float tensors keep their dtype (AQLM models always do); GGUF and llama2.c models
  // default to F32, in which their dequantized values are exact.
  std::optional<DType> float_dtype = options.dtype;
  if (!float_dtype && (model.format == ModelFormat::Gguf || model.format == ModelFormat::Llama2c))
    float_dtype = DType::F32;
  if (model.config.aqlm) float_dtype.reset();
  if (float_dtype) {
    AQLM_CHECK(*float_dtype == DType::F32 || *float_dtype == DType::F16 || *float_dtype == DType::BF16, out.string(),
               ": dtype ", dtype_name(*float_dtype), " cannot be written (supported: F32, F16, BF16)");
  }
  write_folder_atomically(out_dir, options.overwrite, [&](const fs::path& temp) {
    ModelConfig config = model.config;
    if (float_dtype) config.torch_dtype = torch_dtype_name(*float_dtype);
    write_hf_config_files(model, config, temp);
    std::vector<HfTensorToWrite> tensors;
    for (const auto& name : model.weights.names()) {
      const TensorView& t = model.weights.get(name);
      const DType dtype = float_dtype && is_float(t.dtype) ? *float_dtype : t.dtype;
      tensors.push_back({{name, dtype, t.shape}, [&t](std::vector<uint8_t>&) { return t; }});
    }
    write_hf_weights(temp, std::move(tensors), options.max_shard_bytes);
  });
}

}  // namespace aqlm
