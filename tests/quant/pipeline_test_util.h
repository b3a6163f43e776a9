#pragma once
// Shared by the pipeline tests: stories260K settings, a sink that records events (and can
// stop the run after a given event), and byte-for-byte folder comparison.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/jobs/progress_event.h"
#include "core/quant/pipeline.h"
#include "tests/support/test_paths.h"

namespace aqlm::test {

inline std::string calibration_fixture() {
  return source_path("tests/fixtures/quant/pipeline/stories260K_calibration.txt").string();
}

// stories260K with the TinyStories-like calibration text made by
// scripts/reference/make_stories_calibration.sh.
inline PipelineSettings stories_settings(const std::filesystem::path& model, const std::filesystem::path& out) {
  PipelineSettings s;
  s.model = model.string();
  s.out_dir = out.string();
  s.calibration_files = {calibration_fixture()};
  s.seed = 0;
  return s;
}

// Records every event; `stop_when` (if set) raises the cancel flag when it returns true.
class RecordingSink : public ProgressSink {
 public:
  std::function<bool(const ProgressEvent&)> stop_when;
  std::atomic<bool> cancel{false};
  std::vector<ProgressEvent> events;

  void emit(const ProgressEvent& e) override {
    events.push_back(e);
    if (stop_when && stop_when(e)) cancel = true;
  }
  int count(EventKind kind) const {
    int n = 0;
    for (const auto& e : events) n += e.kind == kind;
    return n;
  }
  const ProgressEvent* first(EventKind kind) const {
    for (const auto& e : events)
      if (e.kind == kind) return &e;
    return nullptr;
  }
};

inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// relative path -> bytes of every file under dir.
inline std::map<std::string, std::string> folder_contents(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[std::filesystem::relative(e.path(), dir).string()] = file_bytes(e.path());
  return files;
}

inline void expect_same_folders(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto fa = folder_contents(a), fb = folder_contents(b);
  std::vector<std::string> names_a, names_b;
  for (const auto& [n, _] : fa) names_a.push_back(n);
  for (const auto& [n, _] : fb) names_b.push_back(n);
  ASSERT_EQ(names_a, names_b);
  for (const auto& [name, bytes] : fa) EXPECT_TRUE(bytes == fb.at(name)) << name << " differs between " << a << " and " << b;
}

}  // namespace aqlm::test
