#include "app/studio/model_inspector.h"

#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

#include "core/common/error.h"
#include "core/model/model.h"
#include "core/runtime/run_memory.h"
#include "core/store/model_entry.h"

namespace aqlm::studio {

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
  d.info = store::describe_model(path, *model);
  d.loaded_bytes = std::int64_t(model->weights.total_bytes());
  d.memory_context = std::min(c.max_position_embeddings, 4096);
  d.memory_bytes = estimate_run_memory(c, d.loaded_bytes, d.memory_context, Device::Cpu).total();
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
