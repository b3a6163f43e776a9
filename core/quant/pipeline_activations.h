#pragma once
// The calibration activations between decoder blocks: [windows, seqlen, hidden] values kept
// as fp16 (half the memory of fp32; the block's math runs in fp32 on each window as it is
// read), either in memory or, when they do not fit the --max-ram budget, in a scratch file
// that is read and written one window at a time.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aqlm {

class ActivationStore {
 public:
  // In memory when `file` is empty, else in `file` (created or truncated; removed again when
  // the store goes). Errors name the file.
  ActivationStore(int64_t windows, int64_t seqlen, int64_t hidden, const std::filesystem::path& file = {});
  ~ActivationStore();
  ActivationStore(const ActivationStore&) = delete;
  ActivationStore& operator=(const ActivationStore&) = delete;

  int64_t windows() const { return windows_; }
  int64_t seqlen() const { return seqlen_; }
  int64_t hidden() const { return hidden_; }
  size_t window_values() const { return size_t(seqlen_ * hidden_); }
  size_t bytes() const { return size_t(windows_) * window_values() * 2; }
  bool on_disk() const { return fd_ >= 0; }
  static size_t bytes_for(int64_t windows, int64_t seqlen, int64_t hidden) {
    return size_t(windows) * size_t(seqlen) * size_t(hidden) * 2;
  }

  // Window i from/to fp32 [seqlen, hidden]; writing rounds to the nearest fp16 (ties to even).
  // Several threads may read or write different windows at the same time.
  void write(int64_t window, const float* values);
  void read(int64_t window, float* values) const;
  // The same as the raw fp16 values the store holds (for callers that convert on the GPU).
  void write_half(int64_t window, const uint16_t* values);
  void read_half(int64_t window, uint16_t* values) const;

  // The whole store as raw fp16 (little-endian, window-major) in `path`, written to a temporary
  // name, fsync'd and renamed (a checkpoint never holds half a file).
  void save(const std::filesystem::path& path) const;
  // Fills the store from a file save() wrote; Error naming the file when its size does not fit.
  void load(const std::filesystem::path& path);

 private:
  void write_raw(int64_t window, const uint16_t* half);
  void read_raw(int64_t window, uint16_t* half) const;

  int64_t windows_, seqlen_, hidden_;
  std::vector<uint16_t> memory_;
  std::filesystem::path file_;
  int fd_ = -1;
};

}  // namespace aqlm
