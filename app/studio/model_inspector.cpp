#include "app/studio/model_inspector.h"

#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <map>

#include "core/common/error.h"
#include "core/model/gguf.h"
#include "core/model/gguf_dequant.h"
#include "core/model/model.h"

namespace aqlm::studio {

namespace {

bool is_gguf(const std::filesystem::path& path) { return path.extension() == ".gguf"; }

// The type most of a GGUF's matrices are stored in ("Q4_1"): what the file calls itself.
std::string gguf_dominant_type(const std::filesystem::path& path) {
  const GgufFile file(path.string());
  std::map<std::string, int64_t> elements;
  for (const GgufTensorInfo& tensor : file.tensors())
    if (tensor.ne.size() >= 2) elements[ggml_type_name(tensor.type)] += tensor.numel();
  if (elements.empty()) return "unknown";
  return std::max_element(elements.begin(), elements.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
}

std::string display_name(const std::filesystem::path& path) {
  const std::filesystem::path clean = path.has_filename() ? path : path.parent_path();
  return std::filesystem::is_directory(clean) ? clean.filename().string() : clean.stem().string();
}

}  // namespace

std::int64_t size_on_disk(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_directory(path, error)) {
    const auto size = std::filesystem::file_size(path, error);
    return error ? 0 : std::int64_t(size);
  }
  std::int64_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path, error))
    if (entry.is_regular_file(error)) total += std::int64_t(entry.file_size(error));
  return total;
}

std::int64_t run_memory_bytes(const ModelConfig& c, std::int64_t weight_bytes, int context) {
  const std::int64_t kv_cache = std::int64_t(2) * c.num_layers * context * c.kv_dim() * 4;
  const std::int64_t widest = std::max<std::int64_t>({c.hidden_size, c.q_dim() + 2 * c.kv_dim(), 2 * std::int64_t(c.intermediate_size)});
  const std::int64_t activations = std::int64_t(512) * (widest * 3 + c.vocab_size) * 4;
  return weight_bytes + kv_cache + activations;
}

ModelDescription inspect_model(const std::filesystem::path& path) {
  std::error_code error;
  AQLM_CHECK(std::filesystem::exists(path, error), path.string(), ": does not exist");
  if (std::filesystem::is_directory(path, error))
    AQLM_CHECK(std::filesystem::exists(path / "config.json", error), path.string(),
               ": not a model: the folder has no config.json (expected a Hugging Face or AQLM model folder)");
  const std::unique_ptr<Model> model = load_model(path.string());
  const ModelConfig& c = model->config;

  ModelDescription d;
  d.config = c;
  d.quantized = c.aqlm.has_value();
  d.info.name = display_name(path);
  d.info.path = std::filesystem::absolute(path).lexically_normal();
  d.info.architecture = architecture_name(c.arch);
  d.info.parameters = c.num_parameters();
  d.info.size_bytes = size_on_disk(path);
  switch (model->format) {
    case ModelFormat::Gguf:
      d.info.format = "gguf";
      d.info.dtype = gguf_dominant_type(path);
      break;
    case ModelFormat::HuggingFaceAqlm:
      d.info.format = "hf-aqlm";
      d.info.dtype = str("aqlm-", c.aqlm->num_codebooks, "x", c.aqlm->nbits_per_codebook, "g", c.aqlm->in_group_size);
      break;
    case ModelFormat::HuggingFace:
      d.info.format = "safetensors";
      d.info.dtype = c.torch_dtype;
      break;
    case ModelFormat::Llama2c:
      d.info.format = "llama2c";
      d.info.dtype = "float32";
      break;
  }
  d.loaded_bytes = std::int64_t(model->weights.total_bytes());
  d.memory_bytes = run_memory_bytes(c, d.loaded_bytes, std::min(c.max_position_embeddings, 4096));
  return d;
}

QFuture<InspectionResult> inspect_async(const QString& path) {
  return QtConcurrent::run([path] {
    InspectionResult result;
    result.path = path;
    try {
      result.description = inspect_model(path.toStdString());
    } catch (const std::exception& error) {
      result.error = QString::fromStdString(error.what());
    }
    return result;
  });
}

}  // namespace aqlm::studio
