#include "tests/support/test_paths.h"

#include <atomic>
#include <unistd.h>

#include "core/common/paths.h"

namespace aqlm::test {
namespace fs = std::filesystem;

std::optional<fs::path> shared_path(const std::string& relative) {
  std::optional<fs::path> dir;
  if (const char* v = std::getenv("AQLM_SHARED_DIR"); v && *v) {
    dir = fs::path(v);
  } else {
    dir = fs::path(AQLM_SOURCE_DIR) / ".." / "shared";
  }
  const fs::path p = *dir / relative;
  if (!fs::exists(p)) return std::nullopt;
  return p;
}

std::optional<fs::path> smollm2_path() {
  const fs::path p = models_cache_dir() / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(p)) return std::nullopt;
  return p;
}

fs::path source_path(const std::string& relative) { return fs::path(AQLM_SOURCE_DIR) / relative; }

fs::path temp_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  const fs::path p = fs::temp_directory_path() /
                     ("aqlm-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

}  // namespace aqlm::test
