#pragma once
// Checksums of what a run writes, for the artifacts table. The one place they are computed:
// RunDatabaseSink calls it, whether the job runs in aqlm-cli (--db) or under the studio.
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/store/records.h"

namespace aqlm::store {

// SHA-256 of a file as 64 lower-case hex digits (OpenSSL's libcrypto), read in 1 MiB pieces so
// memory stays flat for weights of many gigabytes. Error naming the file when it cannot be read.
std::string sha256_of_file(const std::filesystem::path& file);

// The artifact row of a run's output folder: `kind`, the folder (absolute), `bytes`, and the
// SHA-256 of its weights, model.safetensors or else the first *.safetensors shard by name (what
// tells two outputs apart; config and tokenizer files are the same for every run of a model).
// Error when the folder has no .safetensors file.
ArtifactInfo output_folder_artifact(const std::filesystem::path& folder, std::string kind, std::int64_t bytes);

}  // namespace aqlm::store
