#pragma once
// The library row of a model file or folder (store::ModelInfo) from the model as loaded: one
// description for the studio's library and for aqlm-cli quantize --db, which adds the model
// it compresses when the database does not know it yet.
#include <cstdint>
#include <filesystem>

#include "core/model/model.h"
#include "core/store/records.h"

namespace aqlm::store {

// Name (the folder's name or the file's stem), absolute normalized path, format (gguf,
// safetensors, hf-aqlm, llama2c), architecture, parameters, dtype (a GGUF's most common matrix
// type, "aqlm-2x8g8", the torch dtype, float32) and size on disk. `model` is `path` loaded.
ModelInfo describe_model(const std::filesystem::path& path, const aqlm::Model& model);

// Bytes of a file, or of every file under a folder (0 for what cannot be read).
std::int64_t size_on_disk(const std::filesystem::path& path);

}  // namespace aqlm::store
