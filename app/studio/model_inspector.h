#pragma once
// What the library shows about a model file or folder, read off the UI thread (loading a GGUF
// dequantizes it: about 2 s for SmolLM2-135M). Everything here is plain C++ over core's
// public API; the library view runs it with QtConcurrent.
#include <QFuture>
#include <QString>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "core/model/model_config.h"
#include "core/store/records.h"

namespace aqlm::studio {

struct ModelDescription {
  store::ModelInfo info;          // name, path, format, architecture, parameters, dtype, size on disk
  ModelConfig config;             // the real shapes, for the wizard's bit budgets
  std::int64_t memory_bytes = 0;  // to run it on the CPU with memory_context tokens (estimate_run_memory)
  int memory_context = 0;         // the model's context, at most 4096
  std::int64_t loaded_bytes = 0;  // weights as the runtime holds them
  bool quantized = false;         // an AQLM folder (not a source for another compression)
};

// Throws aqlm::Error with a one-line reason when `path` is not a model the engine reads
// ("…: not a model: no config.json, .gguf or llama2.c file", a truncated file, …).
ModelDescription inspect_model(const std::filesystem::path& path);

struct InspectionResult {
  QString path;
  std::optional<ModelDescription> description;  // set on success
  QString error;                                // the one-line reason otherwise
};
// inspect_model on the global QThreadPool.
QFuture<InspectionResult> inspect_async(const QString& path);

}  // namespace aqlm::studio
