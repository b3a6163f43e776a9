// The llama2.c reader against an independent numpy reading of stories260K
// (scripts/reference/llama2c_reference.py -> tests/fixtures/model/stories260K_reference.json).
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/model/llama2c.h"
#include "core/model/model.h"
#include "tests/support/test_paths.h"

using namespace aqlm;
namespace fs = std::filesystem;

namespace {

nlohmann::json reference() {
  return nlohmann::json::parse(read_text_file(test::source_path("tests/fixtures/model/stories260K_reference.json")));
}

std::string read_bytes(const fs::path& p) { return read_text_file(p); }

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

void set_header_field(std::string& bytes, int index, int32_t value) { std::memcpy(&bytes[size_t(index) * 4], &value, 4); }

// Loads and expects an Error whose message contains every fragment.
void expect_load_error(const fs::path& p, const std::vector<std::string>& fragments) {
  try {
    load_llama2c_weights(p.string());
    FAIL() << "expected an error for " << p;
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    for (const auto& f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
  }
}

}  // namespace

TEST(Llama2c, Stories260KMatchesNumpyReading) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const auto ref = reference();
  const Llama2cWeights w = load_llama2c_weights(model_path.string());

  EXPECT_EQ(w.config.hidden_size, 64);
  EXPECT_EQ(w.config.intermediate_size, 172);
  EXPECT_EQ(w.config.num_layers, 5);
  EXPECT_EQ(w.config.num_heads, 8);
  EXPECT_EQ(w.config.num_kv_heads, 4);
  EXPECT_EQ(w.config.head_dim, 8);
  EXPECT_EQ(w.config.vocab_size, 512);
  EXPECT_EQ(w.config.max_position_embeddings, 512);
  EXPECT_TRUE(w.config.tie_word_embeddings);
  EXPECT_EQ(w.config.rope_theta, 10000.0);
  EXPECT_EQ(w.config.rms_norm_eps, 1e-5);
  EXPECT_EQ(w.config.num_parameters(), 260032);
  EXPECT_FALSE(w.weights.has("lm_head.weight"));  // tied: the embedding is the classifier

  int64_t params = 0;
  ASSERT_EQ(w.weights.size(), ref["tensors"].size());
  for (const auto& [name, r] : ref["tensors"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(w.weights.has(name));
    const TensorView& t = w.weights.get(name);
    EXPECT_EQ(t.dtype, DType::F32);
    EXPECT_EQ(t.shape, r["shape"].get<std::vector<int64_t>>());
    params += t.numel();
    double sum = 0, checksum = 0, magnitude = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double v = t.as<float>()[i];
      sum += v;
      checksum += v * double(i % 97 + 1);
      magnitude += std::abs(v) * double(i % 97 + 1);
    }
    // Same float32 values summed in float64 in another order: differences are ~1e-16 of the
    // magnitude. 1e-12 leaves room for that and still catches one misplaced row
    // (the checksum weights positions 1..97).
    EXPECT_NEAR(sum, r["sum"].get<double>(), 1e-12 * magnitude + 1e-12);
    EXPECT_NEAR(checksum, r["checksum"].get<double>(), 1e-12 * magnitude + 1e-12);
  }
  EXPECT_EQ(params, ref["num_parameters"].get<int64_t>());
  EXPECT_EQ(params, 260032);

  // Explicit rows, bit for bit (the loader copies, it never computes).
  for (const auto& [key, values] : ref["rows"].items()) {
    SCOPED_TRACE(key);
    const std::string name = key.substr(0, key.find('['));
    const int row = std::stoi(key.substr(key.find('[') + 1));
    const TensorView& t = w.weights.get(name);
    const auto expected = values.get<std::vector<double>>();
    ASSERT_EQ(int64_t(expected.size()), t.dim(1));
    for (size_t c = 0; c < expected.size(); ++c) EXPECT_EQ(t.as<float>()[size_t(row) * expected.size() + c], float(expected[c]));
  }
}

TEST(Llama2c, QRowsAreUnpermutedFromTheFile) {
  // Directly against the raw file: HF q row 25 (head 3, pair 1, first component) is file row 26,
  // HF row 28 (head 3, pair 0, second component) is file row 25, for layer 0.
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const std::string raw = read_bytes(model_path);
  const size_t wq_offset = 28 + size_t(512 * 64 + 5 * 64) * 4;  // header, embedding, attention norms
  auto file_row = [&](int row, int col) {
    float v;
    std::memcpy(&v, raw.data() + wq_offset + (size_t(row) * 64 + size_t(col)) * 4, 4);
    return v;
  };
  const Llama2cWeights w = load_llama2c_weights(model_path.string());
  const float* q = w.weights.get("model.layers.0.self_attn.q_proj.weight").as<float>();
  for (int c = 0; c < 64; ++c) {
    EXPECT_EQ(q[25 * 64 + c], file_row(26, c));
    EXPECT_EQ(q[28 * 64 + c], file_row(25, c));
    EXPECT_EQ(q[0 * 64 + c], file_row(0, c));
    EXPECT_EQ(q[4 * 64 + c], file_row(1, c));
  }
}

TEST(Llama2c, UnpermuteRopeRowsSmallCase) {
  // 2 heads of head_dim 4, 1 column: file rows (pairs) [a0 b0 a1 b1] -> half-split [a0 a1 b0 b1].
  std::vector<float> w = {10, 11, 12, 13, 20, 21, 22, 23};
  unpermute_rope_rows(w.data(), 8, 1, 2);
  EXPECT_EQ(w, (std::vector<float>{10, 12, 11, 13, 20, 22, 21, 23}));
  EXPECT_THROW(unpermute_rope_rows(w.data(), 6, 1, 2), Error);  // head_dim 3 is odd
}

TEST(Llama2c, UntiedClassifierAfterTheRopeTable) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  std::string bytes = read_bytes(model_path);
  set_header_field(bytes, 5, -512);
  std::string classifier(size_t(512 * 64) * 4, '\0');
  for (size_t i = 0; i < 512 * 64; ++i) {
    const float v = float(i) * 0.25f - 7.0f;
    std::memcpy(&classifier[i * 4], &v, 4);
  }
  const fs::path dir = test::temp_dir("llama2c-untied");
  write_bytes(dir / "untied.bin", bytes + classifier);
  const Llama2cWeights w = load_llama2c_weights((dir / "untied.bin").string());
  EXPECT_FALSE(w.config.tie_word_embeddings);
  EXPECT_EQ(w.config.vocab_size, 512);
  ASSERT_TRUE(w.weights.has("lm_head.weight"));
  const TensorView& head = w.weights.get("lm_head.weight");
  EXPECT_EQ(head.shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(head.as<float>()[0], -7.0f);
  EXPECT_EQ(head.as<float>()[512 * 64 - 1], float(512 * 64 - 1) * 0.25f - 7.0f);
  EXPECT_EQ(w.config.num_parameters(), 260032 + 512 * 64);

  // The same header without the classifier bytes is truncated at the classifier.
  write_bytes(dir / "missing.bin", bytes);
  expect_load_error(dir / "missing.bin", {"missing.bin", "truncated", "classifier", "1056540"});
  fs::remove_all(dir);
}

TEST(Llama2c, TruncatedFileNamesTheTensor) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const std::string bytes = read_bytes(model_path);
  const fs::path dir = test::temp_dir("llama2c-truncated");
  // Cut inside the stacked wk (after header 28 + embedding 131072 + norms 1280 + wq 81920 bytes).
  write_bytes(dir / "cut.bin", bytes.substr(0, 28 + 131072 + 1280 + 81920 + 100));
  expect_load_error(dir / "cut.bin", {"cut.bin", "truncated", "k_proj", "but the file has 214400"});
  write_bytes(dir / "header_only.bin", bytes.substr(0, 20));
  expect_load_error(dir / "header_only.bin", {"header_only.bin", "truncated", "28 bytes", "has 20"});
  write_bytes(dir / "empty.bin", "");
  expect_load_error(dir / "empty.bin", {"empty.bin", "truncated"});
  fs::remove_all(dir);
}

TEST(Llama2c, RejectsTrailingBytesAndBadHeaders) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const std::string bytes = read_bytes(model_path);
  const fs::path dir = test::temp_dir("llama2c-bad");

  write_bytes(dir / "trailing.bin", bytes + std::string(8, '\0'));
  expect_load_error(dir / "trailing.bin", {"trailing.bin", "8 unexpected bytes", "1056540"});

  std::string zero = bytes;
  set_header_field(zero, 3, 0);  // n_heads = 0
  write_bytes(dir / "zero.bin", zero);
  expect_load_error(dir / "zero.bin", {"zero.bin", "not a llama2.c model", "n_heads 0"});

  std::string heads = bytes;
  set_header_field(heads, 4, 3);  // 8 heads, 3 kv heads
  write_bytes(dir / "heads.bin", heads);
  expect_load_error(dir / "heads.bin", {"heads.bin", "n_heads 8", "n_kv_heads 3"});

  std::string huge = bytes;
  set_header_field(huge, 0, 1 << 30);  // dim 2^30: sizes far past the file, no overflow
  set_header_field(huge, 3, 1 << 20);
  set_header_field(huge, 4, 1 << 20);
  write_bytes(dir / "huge.bin", huge);
  expect_load_error(dir / "huge.bin", {"huge.bin", "truncated", "token embedding"});

  std::string v1 = bytes;
  set_header_field(v1, 0, 0x616b3432);
  set_header_field(v1, 1, 1);
  write_bytes(dir / "v1.bin", v1);
  expect_load_error(dir / "v1.bin", {"v1.bin", "export version 1", "not supported"});

  expect_load_error(dir / "absent.bin", {"absent.bin", "cannot open"});
  expect_load_error(dir, {"is a folder"});
  fs::remove_all(dir);
}

TEST(Llama2c, FindsTheTokenizerBesideTheModel) {
  const fs::path dir = test::temp_dir("llama2c-tok");
  const std::string model = (dir / "m.bin").string();
  EXPECT_EQ(find_llama2c_tokenizer(model, 512), "");
  write_bytes(dir / "tokenizer.bin", "x");
  EXPECT_EQ(find_llama2c_tokenizer(model, 512), (dir / "tokenizer.bin").string());
  write_bytes(dir / "tok512.bin", "x");
  EXPECT_EQ(find_llama2c_tokenizer(model, 512), (dir / "tok512.bin").string());
  EXPECT_EQ(find_llama2c_tokenizer(model, 32000), (dir / "tokenizer.bin").string());
  fs::remove_all(dir);
}
