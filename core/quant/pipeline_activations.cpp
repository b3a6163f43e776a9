#include "core/quant/pipeline_activations.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/common/error.h"
#include "core/common/half.h"

namespace aqlm {
namespace fs = std::filesystem;

namespace {

void write_all(int fd, const void* data, size_t n, uint64_t offset, const fs::path& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(path.string(), ": cannot write activations: ", std::strerror(w < 0 ? errno : ENOSPC));
    p += w;
    n -= size_t(w);
    offset += uint64_t(w);
  }
}

void read_all(int fd, void* data, size_t n, uint64_t offset, const fs::path& path) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(path.string(), ": cannot read activations: ", std::strerror(errno));
    AQLM_CHECK(r > 0, path.string(), ": activations end early at byte ", offset);
    p += r;
    n -= size_t(r);
    offset += uint64_t(r);
  }
}

}  // namespace

ActivationStore::ActivationStore(int64_t windows, int64_t seqlen, int64_t hidden, const fs::path& file)
    : windows_(windows), seqlen_(seqlen), hidden_(hidden), file_(file) {
  AQLM_CHECK(windows >= 0 && seqlen > 0 && hidden > 0, "activations: bad shape [", windows, ", ", seqlen, ", ", hidden,
             "]");
  if (file.empty()) {
    memory_.assign(size_t(windows) * window_values(), 0);
    return;
  }
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(file.string(), ": cannot create the activations file: ", std::strerror(errno));
  if (::ftruncate(fd_, off_t(bytes())) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail(file.string(), ": cannot size the activations file to ", bytes(), " bytes: ", std::strerror(err));
  }
}

ActivationStore::~ActivationStore() {
  if (fd_ >= 0) {
    ::close(fd_);
    std::error_code ec;
    fs::remove(file_, ec);
  }
}

void ActivationStore::write_raw(int64_t window, const uint16_t* half) {
  const size_t n = window_values();
  if (fd_ < 0) {
    std::memcpy(memory_.data() + size_t(window) * n, half, n * 2);
  } else {
    write_all(fd_, half, n * 2, uint64_t(window) * n * 2, file_);
  }
}

void ActivationStore::read_raw(int64_t window, uint16_t* half) const {
  const size_t n = window_values();
  if (fd_ < 0) {
    std::memcpy(half, memory_.data() + size_t(window) * n, n * 2);
  } else {
    read_all(fd_, half, n * 2, uint64_t(window) * n * 2, file_);
  }
}

void ActivationStore::write(int64_t window, const float* values) {
  AQLM_CHECK(window >= 0 && window < windows_, "activations: window ", window, " of ", windows_);
  const size_t n = window_values();
  if (fd_ < 0) {
    uint16_t* dst = memory_.data() + size_t(window) * n;
    for (size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(values[i]);
    return;
  }
  std::vector<uint16_t> half(n);
  for (size_t i = 0; i < n; ++i) half[i] = f32_to_f16(values[i]);
  write_raw(window, half.data());
}

void ActivationStore::read(int64_t window, float* values) const {
  AQLM_CHECK(window >= 0 && window < windows_, "activations: window ", window, " of ", windows_);
  const size_t n = window_values();
  if (fd_ < 0) {
    const uint16_t* src = memory_.data() + size_t(window) * n;
    for (size_t i = 0; i < n; ++i) values[i] = f16_to_f32(src[i]);
    return;
  }
  std::vector<uint16_t> half(n);
  read_raw(window, half.data());
  for (size_t i = 0; i < n; ++i) values[i] = f16_to_f32(half[i]);
}

void ActivationStore::write_half(int64_t window, const uint16_t* values) {
  AQLM_CHECK(window >= 0 && window < windows_, "activations: window ", window, " of ", windows_);
  write_raw(window, values);
}

void ActivationStore::read_half(int64_t window, uint16_t* values) const {
  AQLM_CHECK(window >= 0 && window < windows_, "activations: window ", window, " of ", windows_);
  read_raw(window, values);
}

void ActivationStore::save(const fs::path& path) const {
  const fs::path tmp = path.string() + ".partial";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp.string(), ": cannot write activations: ", std::strerror(errno));
  try {
    std::vector<uint16_t> half(window_values());
    for (int64_t w = 0; w < windows_; ++w) {
      read_raw(w, half.data());
      write_all(fd, half.data(), half.size() * 2, uint64_t(w) * half.size() * 2, tmp);
    }
    if (::fsync(fd) != 0) fail(tmp.string(), ": cannot flush activations: ", std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  AQLM_CHECK(!ec, path.string(), ": cannot move the activations into place: ", ec.message());
}

void ActivationStore::load(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  AQLM_CHECK(!ec, path.string(), ": cannot read the saved activations: ", ec.message());
  AQLM_CHECK(size == bytes(), path.string(), ": saved activations have ", size, " bytes, but ", windows_,
             " windows of ", seqlen_, " x ", hidden_, " fp16 values need ", bytes());
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path.string(), ": cannot read the saved activations: ", std::strerror(errno));
  try {
    std::vector<uint16_t> half(window_values());
    for (int64_t w = 0; w < windows_; ++w) {
      read_all(fd, half.data(), half.size() * 2, uint64_t(w) * half.size() * 2, path);
      write_raw(w, half.data());
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

}  // namespace aqlm
