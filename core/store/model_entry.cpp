#include "core/store/model_entry.h"

#include <algorithm>
#include <map>
#include <string>

#include "core/common/error.h"
#include "core/model/gguf.h"
#include "core/model/gguf_dequant.h"

namespace aqlm::store {

namespace fs = std::filesystem;

namespace {

// The type most of a GGUF's matrices are stored in ("Q4_1"): what the file calls itself.
std::string gguf_dominant_type(const fs::path& path) {
  const GgufFile file(path.string());
  std::map<std::string, std::int64_t> elements;
  for (const GgufTensorInfo& tensor : file.tensors())
    if (tensor.ne.size() >= 2) elements[ggml_type_name(tensor.type)] += tensor.numel();
  if (elements.empty()) return "unknown";
  return std::max_element(elements.begin(), elements.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
}

std::string display_name(const fs::path& path) {
  const fs::path clean = path.has_filename() ? path : path.parent_path();
  return fs::is_directory(clean) ? clean.filename().string() : clean.stem().string();
}

}  // namespace

std::int64_t size_on_disk(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) {
    const auto size = fs::file_size(path, error);
    return error ? 0 : std::int64_t(size);
  }
  std::int64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(path, error))
    if (entry.is_regular_file(error)) total += std::int64_t(entry.file_size(error));
  return total;
}

ModelInfo describe_model(const fs::path& path, const aqlm::Model& model) {
  const ModelConfig& c = model.config;
  ModelInfo info;
  info.name = display_name(path);
  info.path = fs::absolute(path).lexically_normal();
  info.architecture = architecture_name(c.arch);
  info.parameters = c.num_parameters();
  info.size_bytes = size_on_disk(path);
  switch (model.format) {
    case ModelFormat::Gguf:
      info.format = "gguf";
      info.dtype = gguf_dominant_type(path);
      break;
    case ModelFormat::HuggingFaceAqlm:
      info.format = "hf-aqlm";
      info.dtype = str("aqlm-", c.aqlm->num_codebooks, "x", c.aqlm->nbits_per_codebook, "g", c.aqlm->in_group_size);
      break;
    case ModelFormat::HuggingFace:
      info.format = "safetensors";
      info.dtype = c.torch_dtype;
      break;
    case ModelFormat::Llama2c:
      info.format = "llama2c";
      info.dtype = "float32";
      break;
  }
  return info;
}

}  // namespace aqlm::store
