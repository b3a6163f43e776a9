// load_model: one entry point for every supported format, chosen by what PATH is.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/common/error.h"
#include "core/model/gguf.h"
#include "core/model/hf_folder.h"
#include "core/model/llama2c.h"
#include "core/model/model.h"
#include "core/text/tokenizer.h"

namespace aqlm {
namespace fs = std::filesystem;

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::HuggingFace: return "Hugging Face";
    case ModelFormat::HuggingFaceAqlm: return "Hugging Face AQLM";
    case ModelFormat::Gguf: return "GGUF";
    case ModelFormat::Llama2c: return "llama2.c";
  }
  return "?";
}

namespace {

bool starts_with_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

std::unique_ptr<Model> load_gguf_model(const std::string& path, const LoadOptions& options) {
  GgufWeights g = load_gguf_weights(path);
  auto model = std::make_unique<Model>();
  model->config = std::move(g.config);
  model->weights = std::move(g.weights);
  model->chat_template = std::move(g.chat_template);
  model->metadata = std::move(g.metadata);
  model->format = ModelFormat::Gguf;
  model->source_path = path;
  if (options.load_tokenizer) model->tokenizer = make_tokenizer(tokenizer_spec_from_gguf(g.tokenizer_keys, path));
  return model;
}

std::unique_ptr<Model> load_llama2c_model(const std::string& path, const LoadOptions& options) {
  Llama2cWeights l = load_llama2c_weights(path);
  auto model = std::make_unique<Model>();
  model->config = std::move(l.config);
  model->weights = std::move(l.weights);
  model->format = ModelFormat::Llama2c;
  model->source_path = path;
  if (options.load_tokenizer) {
    std::string tokenizer = options.tokenizer_path;
    if (!tokenizer.empty()) {
      AQLM_CHECK(fs::is_regular_file(tokenizer), tokenizer, ": tokenizer file not found");
    } else {
      tokenizer = find_llama2c_tokenizer(path, model->config.vocab_size);
    }
    // A llama2.c model may come without its tokenizer; it then runs on token ids only.
    if (!tokenizer.empty())
      model->tokenizer = make_tokenizer(tokenizer_spec_from_llama2c(tokenizer, model->config.vocab_size));
  }
  return model;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
  AQLM_CHECK(!path.empty(), "no model path given");
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  AQLM_CHECK(fs::exists(status), path, ": no such file or folder");
  if (fs::is_directory(status)) return load_hf_folder(path, options);
  if (starts_with_gguf_magic(path)) return load_gguf_model(path, options);
  const fs::path p(path);
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  if (ext == ".safetensors" || name == "config.json" || name == "model.safetensors.index.json")
    fail(path, ": part of a Hugging Face model; open its folder (", p.parent_path().string(), ")");
  if (ext == ".gguf") fail(path, ": not a GGUF file (bad magic: expected \"GGUF\")");
  if (ext == ".bin") return load_llama2c_model(path, options);
  fail(path, ": not a recognised model (supported: a Hugging Face folder, a .gguf file, a llama2.c .bin)");
}

}  // namespace aqlm
