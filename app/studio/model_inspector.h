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
  std::int64_t memory_bytes = 0;  // to run it on the CPU with a 4096-token (or smaller) context
  std::int64_t loaded_bytes = 0;  // weights as the runtime holds them
  bool quantized = false;         // an AQLM folder (not a source for another compression)
};

// Throws aqlm::Error with a one-line reason when `path` is not a model the engine reads
// ("…: not a model: no config.json, .gguf or llama2.c file", a truncated file, …).
ModelDescription inspect_model(const std::filesystem::path& path);

// Bytes of a file, or of every file under a folder.
std::int64_t size_on_disk(const std::filesystem::path& path);

// Memory to run a model of `config` with `weight_bytes` of loaded weights on the CPU: the
// weights, the fp32 KV cache of `context` tokens and the activations of a 512-token batch.
std::int64_t run_memory_bytes(const ModelConfig& config, std::int64_t weight_bytes, int context);

struct InspectionResult {
  QString path;
  std::optional<ModelDescription> description;  // set on success
  QString error;                                // the one-line reason otherwise
};
// inspect_model on the global QThreadPool.
QFuture<InspectionResult> inspect_async(const QString& path);

}  // namespace aqlm::studio
