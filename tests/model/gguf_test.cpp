// The GGUF reader and dequantizers against files written by the reference Python `gguf`
// package and values from its dequantize (scripts/reference/make_gguf_fixtures.py,
// scripts/reference/smollm2_gguf_reference.py). Dequantization is compared bit for bit: both
// sides follow ggml's reference C code operation by operation.
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/model/gguf.h"
#include "core/model/gguf_dequant.h"
#include "tests/support/test_paths.h"

using namespace aqlm;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fixture(const std::string& name) { return test::source_path("tests/fixtures/model/" + name); }

// STEM.json indexes STEM.f32 (little-endian float32 values).
struct Expected {
  json index;
  std::vector<float> values;
  explicit Expected(const std::string& stem) {
    index = json::parse(read_text_file(fixture(stem + ".json")));
    const std::string bytes = read_text_file(fixture(stem + ".f32"));
    values.resize(bytes.size() / 4);
    std::memcpy(values.data(), bytes.data(), values.size() * 4);
  }
  std::vector<float> get(const std::string& name) const {
    const json& e = index.at(name);
    const size_t offset = e["offset"].get<size_t>(), count = e["count"].get<size_t>();
    return std::vector<float>(values.begin() + long(offset), values.begin() + long(offset + count));
  }
};

// Bitwise equality that also treats identical NaNs as equal, with the first difference reported.
void expect_bits_equal(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::memcmp(&actual[i], &expected[i], 4) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << actual[i] << ", expected " << expected[i];
      return;
    }
  }
}

void expect_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << fragments.front() << "'";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    for (const auto& f : fragments) EXPECT_NE(m.find(f), std::string::npos) << "'" << f << "' not in: " << m;
  }
}

std::string read_bytes(const fs::path& p) { return read_text_file(p); }
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

void check_types_file(const std::string& name, uint32_t version) {
  const GgufFile f(fixture(name).string());
  EXPECT_EQ(f.version(), version);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("test.u8"), 200);
  EXPECT_EQ(f.get_int("test.i8"), -100);
  EXPECT_EQ(f.get_int("test.u16"), 60000);
  EXPECT_EQ(f.get_int("test.i16"), -30000);
  EXPECT_EQ(f.get_int("test.u32"), 4000000000LL);
  EXPECT_EQ(f.get_int("test.i32"), -2000000000);
  EXPECT_EQ(f.find("test.u64")->value.get<uint64_t>(), 18000000000000000000ULL);
  EXPECT_EQ(f.get_int("test.i64"), -9000000000000000000LL);
  EXPECT_EQ(f.get_float_or("test.f32", 0), 0.15625);
  EXPECT_EQ(f.get_float_or("test.f64", 0), 2.718281828459045);
  EXPECT_EQ(f.get_float_or("test.f32_eps", 0), 1e-5);  // the shortest decimal of float(1e-5)
  EXPECT_EQ(f.find("test.array_f32")->value[0].get<double>(), double(0.1f));  // exact float32 bits
  EXPECT_EQ(f.find("test.array_f32")->value[1].get<double>(), -2.5);
  EXPECT_EQ(f.find("test.bool")->value, true);
  EXPECT_EQ(f.get_string("test.string"), "h\xc3\xa9llo GGUF");
  EXPECT_EQ(f.find("test.array_i32")->value, json::parse("[1, -2, 3]"));
  EXPECT_EQ(f.find("test.array_i32")->element_type, GgufType::Int32);
  EXPECT_EQ(f.find("test.array_str")->value, json::parse(R"(["a", "bc", ""])"));
  EXPECT_EQ(gguf_value_summary(*f.find("test.array_long")), "[100 i32: 0, 1, 2, 3, 4, 5, 6, 7, ...]");
  EXPECT_EQ(gguf_value_summary(*f.find("test.array_str")), R"(["a","bc",""])");
  expect_error([&] { f.get_int("test.string"); }, {name, "test.string", "should be an integer", "string"});
  expect_error([&] { f.get_string("no.such.key"); }, {name, "no.such.key", "missing"});

  const Expected expected("types_expected");
  ASSERT_EQ(f.tensors().size(), expected.index.size());
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    const json& e = expected.index.at(t.name);
    EXPECT_EQ(ggml_type_name(t.type), e["type"].get<std::string>());
    EXPECT_EQ(t.hf_shape(), e["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.offset % 64, 0u);
    std::vector<float> values(size_t(t.numel()));
    dequantize_ggml(t.type, t.data, values.data(), values.size());
    expect_bits_equal(values, expected.get(t.name), t.name);
  }
}

}  // namespace

TEST(Gguf, V3EveryValueTypeAndDequantizer) { check_types_file("types_v3.gguf", 3); }

TEST(Gguf, V2HeaderReadsTheSame) { check_types_file("types_v2.gguf", 2); }

TEST(Gguf, DequantizeRejectsUnsupportedTypesAndPartialBlocks) {
  std::vector<uint8_t> block(84, 0);
  float out[256];
  expect_error([&] { dequantize_ggml(10, block.data(), out, 256); }, {"Q2_K", "cannot be read", "Q4_1"});
  expect_error([&] { dequantize_ggml(77, block.data(), out, 256); }, {"type 77"});
  expect_error([&] { dequantize_ggml(8, block.data(), out, 31); }, {"Q8_0", "31 elements", "32-element blocks"});
}

TEST(Gguf, TinyLlamaLoadsAsHuggingFace) {
  const GgufWeights w = load_gguf_weights(fixture("tiny_llama.gguf").string());
  const ModelConfig& c = w.config;
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 48);
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);  // stored as f32; read back as its shortest decimal
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});

  const Expected expected("tiny_expected");
  size_t count = 0;
  for (const auto& [key, e] : expected.index.items()) {
    if (key.rfind("tiny_llama.gguf:", 0) != 0) continue;
    const std::string name = key.substr(key.find(':') + 1);
    SCOPED_TRACE(name);
    ++count;
    ASSERT_TRUE(w.weights.has(name));
    EXPECT_EQ(w.weights.get(name).shape, e["shape"].get<std::vector<int64_t>>());
    expect_bits_equal(w.weights.to_f32(name), expected.get(key), name);
  }
  EXPECT_EQ(w.weights.size(), count);  // nothing else (rope_freqs is read into the config)
  // Plain float types stay as they were stored (views, or owned un-permuted copies for q/k).
  EXPECT_EQ(w.weights.get("model.layers.0.self_attn.k_proj.weight").dtype, DType::F16);
  EXPECT_EQ(w.weights.get("model.layers.0.self_attn.o_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(w.weights.get("lm_head.weight").dtype, DType::F16);
  EXPECT_EQ(w.weights.get("model.layers.0.self_attn.q_proj.weight").dtype, DType::F32);  // Q8_0, dequantized

  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.tokens").size(), 48u);
  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.tokens")[1], "<|im_start|>");
  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.merges"), json::parse(R"(["a a", "b b"])"));
  EXPECT_FALSE(w.tokenizer_keys.contains("llama.block_count"));
  EXPECT_NE(w.chat_template.find("<|im_start|>"), std::string::npos);
  bool saw_arch = false;
  for (const auto& [key, value] : w.metadata)
    if (key == "general.architecture") saw_arch = value == "\"llama\"";
  EXPECT_TRUE(saw_arch);
}

TEST(Gguf, TinyQwen2KeepsBiasesAndRowOrder) {
  const GgufWeights w = load_gguf_weights(fixture("tiny_qwen2.gguf").string());
  EXPECT_EQ(w.config.arch, Architecture::Qwen2);
  EXPECT_TRUE(w.config.attention_bias);
  EXPECT_TRUE(w.config.tie_word_embeddings);
  EXPECT_TRUE(w.config.rope_scaling.type.empty());
  EXPECT_FALSE(w.weights.has("lm_head.weight"));
  const Expected expected("tiny_expected");
  size_t count = 0;
  for (const auto& [key, e] : expected.index.items()) {
    if (key.rfind("tiny_qwen2.gguf:", 0) != 0) continue;
    const std::string name = key.substr(key.find(':') + 1);
    ++count;
    ASSERT_TRUE(w.weights.has(name)) << name;
    expect_bits_equal(w.weights.to_f32(name), expected.get(key), name);
  }
  EXPECT_EQ(count, 14u);  // embedding, final norm, 2 norms + 7 linears + 3 biases of the one layer
  EXPECT_EQ(w.weights.size(), count);
  EXPECT_TRUE(w.weights.has("model.layers.0.self_attn.q_proj.bias"));
}

TEST(Gguf, ModelErrorsNameFileAndCause) {
  auto load = [](const std::string& name) { return [name] { load_gguf_weights(fixture(name).string()); }; };
  expect_error(load("bad_arch.gguf"), {"bad_arch.gguf", "architecture 'phi3'", "supported", "llama", "qwen2"});
  expect_error(load("bad_missing_tensor.gguf"), {"bad_missing_tensor.gguf", "blk.0.ffn_up.weight", "missing"});
  expect_error(load("bad_missing_key.gguf"), {"bad_missing_key.gguf", "llama.block_count", "missing"});
  expect_error(load("bad_shape.gguf"), {"bad_shape.gguf", "blk.0.ffn_gate.weight", "[64, 32]", "[60, 32]"});
  expect_error(load("bad_unknown_tensor.gguf"), {"bad_unknown_tensor.gguf", "blk.0.attn_q_norm.weight", "llama"});
  expect_error(load("bad_type.gguf"), {"bad_type.gguf", "IQ4_NL", "cannot be read", "Q8_0"});
  expect_error(load("bad_rope_freqs.gguf"), {"bad_rope_freqs.gguf", "rope_freqs.weight[", "Llama-3 rope scaling"});
  const GgufWeights linear = load_gguf_weights(fixture("rope_linear.gguf").string());
  EXPECT_EQ(linear.config.rope_scaling.type, "linear");
  EXPECT_EQ(linear.config.rope_scaling.factor, 2.0);
}

TEST(Gguf, FileErrorsNameFileAndCause) {
  const std::string good = read_bytes(fixture("tiny_llama.gguf"));
  const fs::path dir = test::temp_dir("gguf-bad");
  auto parse = [](const fs::path& p) { return [p] { GgufFile f(p.string()); }; };

  write_bytes(dir / "magic.gguf", "GGML" + good.substr(4));
  expect_error(parse(dir / "magic.gguf"), {"magic.gguf", "not a GGUF file", "magic"});
  std::string v1 = good;
  v1[4] = 1;
  write_bytes(dir / "v1.gguf", v1);
  expect_error(parse(dir / "v1.gguf"), {"v1.gguf", "version 1", "supported: 2, 3"});
  std::string big = good;
  std::memcpy(&big[4], "\0\0\0\3", 4);
  write_bytes(dir / "big.gguf", big);
  expect_error(parse(dir / "big.gguf"), {"big.gguf", "big-endian"});

  // Cut inside the tensor data: the last tensor (rope_freqs, 16 bytes, then 16 bytes of padding
  // to the 32-byte alignment) now ends past the end.
  write_bytes(dir / "cut_data.gguf", good.substr(0, good.size() - 24));
  expect_error(parse(dir / "cut_data.gguf"), {"cut_data.gguf", "truncated", "rope_freqs.weight",
                                              "ends at byte " + std::to_string(good.size() - 16),
                                              "the file has " + std::to_string(good.size() - 24)});
  // Cut inside the metadata (the token list).
  write_bytes(dir / "cut_meta.gguf", good.substr(0, 600));
  expect_error(parse(dir / "cut_meta.gguf"), {"cut_meta.gguf", "truncated", "metadata"});
  write_bytes(dir / "empty.gguf", "");
  expect_error(parse(dir / "empty.gguf"), {"empty.gguf", "not a GGUF file"});
  // A huge metadata count cannot make it allocate or loop: it is checked against the size.
  std::string counts = good;
  const uint64_t huge = 1ULL << 60;
  std::memcpy(&counts[16], &huge, 8);
  write_bytes(dir / "counts.gguf", counts);
  expect_error(parse(dir / "counts.gguf"), {"counts.gguf", "cannot fit"});
  fs::remove_all(dir);
}

TEST(Gguf, SmolLM2LoadsWithHuggingFaceNamesAndConfig) {
  AQLM_REQUIRE_SMOLLM2(path);
  const json ref = json::parse(read_text_file(fixture("smollm2_gguf_reference.json")));
  const auto start = std::chrono::steady_clock::now();
  const GgufWeights w = load_gguf_weights(path.string());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("load_seconds", std::to_string(seconds));
  std::printf("SmolLM2 Q4_1 GGUF loaded and dequantized in %.2f s\n", seconds);

  const ModelConfig& c = w.config;
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.num_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.num_parameters(), 134515008);
  EXPECT_EQ(ref["tensor_count"], 272);
  EXPECT_EQ(w.weights.size(), 272u);  // every GGUF tensor, one HF name each; no lm_head (tied)
  EXPECT_FALSE(w.weights.has("lm_head.weight"));
  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(w.tokenizer_keys.at("tokenizer.ggml.pre"), "smollm");
  EXPECT_NE(w.chat_template.find("<|im_start|>"), std::string::npos);

  for (const auto& [name, r] : ref["tensors"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(w.weights.has(name));
    const std::vector<float> v = w.weights.to_f32(name);
    EXPECT_EQ(w.weights.get(name).shape, r["shape"].get<std::vector<int64_t>>());
    double sum = 0, checksum = 0, magnitude = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      sum += v[i];
      checksum += double(v[i]) * double(i % 97 + 1);
      magnitude += std::abs(double(v[i])) * double(i % 97 + 1);
    }
    // Bit-equal float32 inputs summed in float64 in another order: ~1e-16 of the magnitude.
    EXPECT_NEAR(sum, r["sum"].get<double>(), 1e-12 * magnitude);
    EXPECT_NEAR(checksum, r["checksum"].get<double>(), 1e-12 * magnitude);
    const auto row_values = r["row_values"].get<std::vector<double>>();
    const size_t row = r["row"].get<int>() < 0 ? 0 : size_t(r["row"].get<int>());
    for (size_t k = 0; k < row_values.size(); ++k)
      ASSERT_EQ(v[row * row_values.size() + k], float(row_values[k])) << "row " << row << " column " << k;
  }
}
