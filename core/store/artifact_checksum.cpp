#include "core/store/artifact_checksum.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

#include "core/common/error.h"

namespace aqlm::store {

namespace fs = std::filesystem;

std::string sha256_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  AQLM_CHECK(in, file.string(), ": cannot be read to compute its checksum");
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  AQLM_CHECK(context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1, file.string(),
             ": SHA-256 is not available from OpenSSL");
  std::vector<char> buffer(std::size_t(1) << 20);
  while (in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) EVP_DigestUpdate(context.get(), buffer.data(), std::size_t(got));
  }
  AQLM_CHECK(in.eof(), file.string(), ": reading failed while computing its checksum");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += {kDigits[digest[i] >> 4], kDigits[digest[i] & 15]};
  return hex;
}

ArtifactInfo output_folder_artifact(const fs::path& folder, std::string kind, std::int64_t bytes) {
  fs::path weights = folder / "model.safetensors";
  if (!fs::is_regular_file(weights)) {
    weights.clear();
    std::error_code error;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder, error))
      if (entry.path().extension() == ".safetensors" && (weights.empty() || entry.path().filename() < weights.filename()))
        weights = entry.path();
    AQLM_CHECK(!weights.empty(), folder.string(), ": no .safetensors weights in the run's output folder",
               error ? ": " + error.message() : std::string());
  }
  ArtifactInfo artifact;
  artifact.kind = std::move(kind);
  artifact.path = fs::absolute(folder).lexically_normal();
  artifact.bytes = bytes;
  artifact.sha256 = sha256_of_file(weights);
  return artifact;
}

}  // namespace aqlm::store
