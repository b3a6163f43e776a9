#pragma once
// Test data lives in ../shared (the CI model and texts) and in the models cache (SmolLM2).
// Tests that need a file that is absent skip with a message naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace aqlm::test {

// $AQLM_SHARED_DIR or ../shared next to the source tree; nullopt when absent.
std::optional<std::filesystem::path> shared_path(const std::string& relative);
// The default model (SmolLM2-135M-Instruct GGUF) in the models cache; nullopt when not fetched.
std::optional<std::filesystem::path> smollm2_path();
std::filesystem::path source_path(const std::string& relative);  // a file of the source tree
std::filesystem::path temp_dir(const std::string& name);         // a fresh, empty folder

}  // namespace aqlm::test

// Declares `var` as the path of a shared file, or skips the test with a clear message.
#define AQLM_REQUIRE_SHARED(var, relative)                                                          \
  const auto var##_opt = ::aqlm::test::shared_path(relative);                                       \
  if (!var##_opt) GTEST_SKIP() << "shared test data not found: " << (relative)                      \
                               << " (set AQLM_SHARED_DIR or put the shared folder beside the repo)"; \
  const std::filesystem::path var = *var##_opt

#define AQLM_REQUIRE_SMOLLM2(var)                                                                  \
  const auto var##_opt = ::aqlm::test::smollm2_path();                                             \
  if (!var##_opt) GTEST_SKIP() << "SmolLM2-135M-Instruct not in the models cache; run scripts/setup.sh"; \
  const std::filesystem::path var = *var##_opt
