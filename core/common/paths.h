#pragma once
// Where things live on disk: the shared test data, the app's data and cache folders.
#include <filesystem>
#include <optional>
#include <string>

namespace aqlm {

// $AQLM_SHARED_DIR, else ../shared relative to the source tree (tests) or the working folder.
std::optional<std::filesystem::path> shared_dir();

// $AQLM_DATA_DIR, else $XDG_DATA_HOME/aqlm-studio, else ~/.local/share/aqlm-studio.
std::filesystem::path app_data_dir();

// $AQLM_MODELS_DIR, else $XDG_CACHE_HOME/aqlm-studio/models, else ~/.cache/aqlm-studio/models.
std::filesystem::path models_cache_dir();

// Writes a file atomically: to a temporary name beside it, fsync, then rename over the target.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

// Reads a whole (small) file; throws Error naming the file when it cannot.
std::string read_text_file(const std::filesystem::path& path);

}  // namespace aqlm
