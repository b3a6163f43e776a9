// The artifacts' SHA-256 (core/store/artifact_checksum): NIST's "abc" and empty-message vectors
// and a patterned file longer than the 1 MiB read piece, against Python's hashlib
// (scripts/reference/artifact_checksum_reference.py); the weights file an output folder's row
// is keyed to; the unhappy paths.
#include <gtest/gtest.h>

#include <fstream>

#include "core/common/error.h"
#include "core/store/artifact_checksum.h"
#include "tests/support/test_paths.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& file, const std::string& bytes) { std::ofstream(file, std::ios::binary) << bytes; }

std::string patterned(std::size_t n) {
  std::string bytes(n, '\0');
  for (std::size_t i = 0; i < n; ++i) bytes[i] = char((i * 7 + 3) % 251);
  return bytes;
}

TEST(ArtifactChecksum, MatchesHashlib) {
  const fs::path dir = test::temp_dir("artifact-checksum");
  write(dir / "abc", "abc");
  write(dir / "empty", "");
  write(dir / "patterned", patterned(3 * 1024 * 1024 + 17));
  EXPECT_EQ(store::sha256_of_file(dir / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(store::sha256_of_file(dir / "empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(store::sha256_of_file(dir / "patterned"), "b94a81035474d847a7b5f270ed72d10d51a5643254d6495dce93e2022aa22ac7");
  fs::remove_all(dir);
}

TEST(ArtifactChecksum, OutputFolderRowHashesItsWeights) {
  const fs::path dir = test::temp_dir("artifact-folder");
  fs::create_directories(dir / "single");
  write(dir / "single" / "config.json", "{}");
  write(dir / "single" / "model.safetensors", "abc");
  const store::ArtifactInfo single = store::output_folder_artifact(dir / "single", "hf-aqlm", 1234);
  EXPECT_EQ(single.kind, "hf-aqlm");
  EXPECT_EQ(single.path, fs::absolute(dir / "single").lexically_normal());
  EXPECT_EQ(single.bytes, 1234);
  EXPECT_EQ(single.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  // Sharded: the first shard by name, whatever order the folder lists them in.
  fs::create_directories(dir / "sharded");
  write(dir / "sharded" / "model-00002-of-00002.safetensors", "abc");
  write(dir / "sharded" / "model-00001-of-00002.safetensors", "");
  EXPECT_EQ(store::output_folder_artifact(dir / "sharded", "hf-fp16", 3).sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  fs::remove_all(dir);
}

TEST(ArtifactChecksum, SaysWhatIsMissing) {
  const fs::path dir = test::temp_dir("artifact-missing");
  try {
    store::sha256_of_file(dir / "absent.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "absent.bin").string() + ": cannot be read to compute its checksum");
  }
  write(dir / "config.json", "{}");
  try {
    store::output_folder_artifact(dir, "hf-aqlm", 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.string() + ": no .safetensors weights in the run's output folder");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aqlm
