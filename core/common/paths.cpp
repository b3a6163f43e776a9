#include "core/common/paths.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/common/error.h"

namespace aqlm {
namespace fs = std::filesystem;

static std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v && *v) return std::string(v);
  return std::nullopt;
}

static fs::path home_dir() {
  if (auto h = env("HOME")) return *h;
  return fs::current_path();
}

std::optional<fs::path> shared_dir() {
  if (auto v = env("AQLM_SHARED_DIR")) {
    if (fs::is_directory(*v)) return fs::path(*v);
    return std::nullopt;
  }
#ifdef AQLM_SOURCE_DIR
  if (fs::is_directory(fs::path(AQLM_SOURCE_DIR) / ".." / "shared")) return fs::path(AQLM_SOURCE_DIR) / ".." / "shared";
#endif
  if (fs::is_directory("../shared")) return fs::path("../shared");
  return std::nullopt;
}

fs::path app_data_dir() {
  if (auto v = env("AQLM_DATA_DIR")) return *v;
  if (auto v = env("XDG_DATA_HOME")) return fs::path(*v) / "aqlm-studio";
  return home_dir() / ".local" / "share" / "aqlm-studio";
}

fs::path models_cache_dir() {
  if (auto v = env("AQLM_MODELS_DIR")) return *v;
  if (auto v = env("XDG_CACHE_HOME")) return fs::path(*v) / "aqlm-studio" / "models";
  return home_dir() / ".cache" / "aqlm-studio" / "models";
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  const fs::path tmp = path.string() + ".partial";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path.string(), ": cannot write: ", std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail(path.string(), ": write failed: ", std::strerror(err));
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path.string(), ": write failed: ", std::strerror(err));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    fail(path.string(), ": cannot rename into place: ", ec.message());
  }
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open: ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path.string(), ": read failed");
  return ss.str();
}

}  // namespace aqlm
