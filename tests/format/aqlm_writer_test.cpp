// The HF AQLM writer: write -> read is bit-exact, the layout is the published one, our runtime
// runs what it wrote exactly as the dequantized dense model, and every failure leaves nothing.
#include "core/format/aqlm_writer.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <set>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/format/aqlm_codes.h"
#include "core/model/hf_folder.h"
#include "core/model/safetensors.h"
#include "core/text/tokenizer.h"
#include "tests/format/format_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_error;

json read_json(const fs::path& p) { return json::parse(read_text_file(p)); }

// Inside a helper that returns a value (where ASSERT_* cannot stand): a failed check throws.
#define ASSERT_EQ_OR_THROW(cond, what) \
  if (!(cond)) throw std::runtime_error(std::string("unexpected tensor ") + (what))

// The dense model our runtime should be equivalent to: every float tensor of the loaded AQLM
// model as it is (fp16), every AQLM projection replaced by its dequantized float32 weight.
std::unique_ptr<Model> dequantized_copy(const Model& aqlm_model) {
  auto dense = std::make_unique<Model>();
  dense->config = aqlm_model.config;
  dense->config.aqlm.reset();
  const auto quantized = quantized_prefixes(aqlm_model.weights, aqlm_model.config);
  for (const auto& name : aqlm_model.weights.names()) {
    const TensorView& t = aqlm_model.weights.get(name);
    if (name.ends_with(".codes") || name.ends_with(".codebooks") || name.ends_with(".scales")) continue;
    ASSERT_EQ_OR_THROW(t.dtype == DType::F16, name);
    std::vector<uint8_t> bytes(t.nbytes());
    std::memcpy(bytes.data(), t.data, bytes.size());
    dense->weights.add_owned(name, t.dtype, t.shape, std::move(bytes));
  }
  for (const auto& p : quantized) {
    const QuantizedLayer q = read_quantized_layer(aqlm_model, p);
    dense->weights.add_f32(p + ".weight", {q.out_features, q.in_features}, q.dequantize());
  }
  return dense;
}

std::vector<int32_t> some_ids(int vocab, uint32_t seed, size_t n = 12) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = int32_t(rng() % uint32_t(vocab));
  return ids;
}

// ------------------------------------------------------------------ round trips per config

class AqlmRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(AqlmRoundTrip, WriteThenReadIsBitExact) {
  const AqlmConfig config = AqlmConfig::parse(GetParam());
  const auto model = test::tiny_model(7, /*qwen2=*/false, /*tied=*/false);
  const std::string kept = "model.layers.1.mlp.down_proj";  // one projection stays dense
  const auto layers = test::random_layers(model->config, config, 100, {kept});
  const fs::path dir = test::temp_dir(std::string("format-roundtrip-") + GetParam());
  FolderWriteOptions options;
  options.studio = {{"settings", {{"seed", 100}}}, {"method", "aqlm"}};
  save_aqlm_folder(*model, layers, (dir / "out").string(), options);
  EXPECT_EQ(test::entries_of(dir), std::vector<std::string>{"out"});  // no temporary folder left
  EXPECT_EQ(test::entries_of(dir / "out"),
            (std::vector<std::string>{"aqlm_studio.json", "config.json", "generation_config.json", "model.safetensors"}));

  const auto back = load_model((dir / "out").string(), test::without_tokenizer());
  EXPECT_EQ(back->format, ModelFormat::HuggingFaceAqlm);
  ASSERT_TRUE(back->config.aqlm);
  EXPECT_EQ(aqlm_config_of(*back->config.aqlm), config);
  EXPECT_EQ(back->config.torch_dtype, "float16");
  for (const auto& [p, q] : layers) {
    const QuantizedLayer r = read_quantized_layer(*back, p);
    EXPECT_EQ(r.codes, q.codes) << p;
    ASSERT_EQ(r.codebooks.size(), q.codebooks.size());
    for (size_t i = 0; i < q.codebooks.size(); ++i)
      ASSERT_EQ(f32_to_f16(r.codebooks[i]), f32_to_f16(q.codebooks[i])) << p << " codebook value " << i;
    for (size_t i = 0; i < q.scales.size(); ++i) ASSERT_EQ(r.scales[i], test::round_f16(q.scales[i])) << p << " scale " << i;
    EXPECT_EQ(back->weights.get(p + ".codes").dtype, config.nbits <= 8 ? DType::I8 : DType::I16);
    EXPECT_FALSE(back->weights.has(p + ".weight"));
  }
  // Dense tensors: the source's float32 values rounded to fp16, bit for bit.
  for (const auto& name : {std::string("model.embed_tokens.weight"), std::string("lm_head.weight"),
                           std::string("model.layers.0.input_layernorm.weight"), kept + ".weight"}) {
    const TensorView& t = back->weights.get(name);
    ASSERT_EQ(t.dtype, DType::F16) << name;
    const std::vector<float> source = model->weights.to_f32(name);
    for (size_t i = 0; i < source.size(); ++i) ASSERT_EQ(t.as<uint16_t>()[i], f32_to_f16(source[i])) << name << " " << i;
  }

  // Stored bits: the authors' two's complement (index >= 2^(B-1) stored negative).
  const std::string p0 = "model.layers.0.self_attn.q_proj";
  const TensorView& stored = back->weights.get(p0 + ".codes");
  size_t negative = 0;
  for (size_t i = 0; i < layers.at(p0).codes.size(); ++i) {
    const int32_t index = layers.at(p0).codes[i];
    const int32_t raw = stored.dtype == DType::I8 ? stored.as<int8_t>()[i] : stored.as<int16_t>()[i];
    ASSERT_EQ(raw, index >= (1 << (config.nbits - 1)) ? index - (1 << config.nbits) : index) << i;
    negative += raw < 0;
  }
  EXPECT_GT(negative, layers.at(p0).codes.size() / 3) << "random codes: about half are stored negative";

  // config.json as transformers reads it.
  const json c = read_json(dir / "out" / "config.json");
  const json& qc = c.at("quantization_config");
  EXPECT_EQ(qc.at("quant_method"), "aqlm");
  EXPECT_EQ(qc.at("num_codebooks"), config.num_codebooks);
  EXPECT_EQ(qc.at("nbits_per_codebook"), config.nbits);
  EXPECT_EQ(qc.at("in_group_size"), config.group_size);
  EXPECT_EQ(qc.at("out_group_size"), 1);
  EXPECT_EQ(c.at("torch_dtype"), "float16");
  const auto listed = qc.at("linear_weights_not_to_quantize").get<std::vector<std::string>>();
  auto is_listed = [&](const std::string& n) { return std::find(listed.begin(), listed.end(), n) != listed.end(); };
  for (const auto& name : back->weights.names()) {
    const bool aqlm_part = name.ends_with(".codes") || name.ends_with(".codebooks") || name.ends_with(".scales");
    EXPECT_EQ(is_listed(name), !aqlm_part) << name;  // every dense tensor, nothing of a quantized one
  }
  EXPECT_TRUE(is_listed("lm_head.weight") && is_listed("lm_head") && is_listed(kept) && is_listed(kept + ".weight"));
  EXPECT_FALSE(is_listed(p0) || is_listed(p0 + ".weight"));

  // aqlm_studio.json: the writer's fields, with the bits of REFERENCE.md section 1 worked out here.
  const json s = read_json(dir / "out" / kAqlmStudioJson);
  EXPECT_EQ(s.at("format"), "aqlm-studio");
  EXPECT_EQ(s.at("method"), "aqlm");
  EXPECT_EQ(s.at("config"), GetParam());
  EXPECT_EQ(s.at("storage"), "hf-aqlm");
  EXPECT_EQ(s.at("settings").at("seed"), 100);
  EXPECT_EQ(s.at("quantized_projections"), layers.size());
  EXPECT_EQ(s.at("dense_projections"), json::array({kept}));
  const double M = config.num_codebooks, B = config.nbits, g = config.group_size, K = std::pow(2.0, B);
  double bits = 0, stored_bits = 0, params = 0;
  for (const auto& [p, q] : layers) {
    const double out = double(q.out_features), in = double(q.in_features);
    bits += 16 * g * M * K + out * (in / g) * B * M + 16 * out;
    stored_bits += 16 * g * M * K + out * (in / g) * (B <= 8 ? 8 : 16) * M + 16 * out;
    params += out * in;
  }
  EXPECT_NEAR(s.at("bits_per_parameter").get<double>(), bits / params, 1e-12);
  EXPECT_NEAR(s.at("stored_bits_per_parameter").get<double>(), stored_bits / params, 1e-12);
  EXPECT_EQ(s.at("quantized_parameters").get<double>(), params);
  fs::remove_all(dir);
}

// 1x16g8: int16 codes with bit patterns >= 2^15; 2x8g8: int8; 1x8g4: one 8-bit codebook of
// 4-vectors; 2x12g8: int16 holding 12-bit two's complement (negative from 2048 on).
INSTANTIATE_TEST_SUITE_P(Configs, AqlmRoundTrip, ::testing::Values("1x16g8", "2x8g8", "1x8g4", "2x12g8"),
                         [](const auto& info) { return std::string(info.param); });

TEST(AqlmWriter, ShardedFolderKeepsEveryLayerWhole) {
  // 40 KB shards: a layer's codes, codebooks and scales may land in different files; the
  // streamed writer still loads each layer once and everything reads back.
  const auto model = test::tiny_model(9);
  const auto layers = test::random_layers(model->config, AqlmConfig{2, 8, 8}, 700);
  const fs::path dir = test::temp_dir("format-sharded");
  FolderWriteOptions options;
  options.max_shard_bytes = 40 * 1000;
  save_aqlm_folder(*model, layers, (dir / "out").string(), options);
  const json index = read_json(dir / "out" / "model.safetensors.index.json");
  std::set<std::string> shards;
  for (const auto& [name, file] : index.at("weight_map").items()) shards.insert(file.get<std::string>());
  EXPECT_GE(shards.size(), 3u);
  const auto back = load_model((dir / "out").string(), test::without_tokenizer());
  for (const auto& [p, q] : layers) EXPECT_EQ(read_quantized_layer(*back, p).codes, q.codes) << p;
  fs::remove_all(dir);
}

// ------------------------------------------------------------------ logits

TEST(AqlmWriter, WrittenModelRunsAsTheDequantizedDenseModel) {
  // Qwen2 (q/k/v biases kept dense in fp16), tied head, 2x8g8 on every projection: the runtime's
  // AQLM kernels on the written folder against its dense path on the dequantized weights.
  const auto model = test::tiny_model(21, /*qwen2=*/true, /*tied=*/true);
  const auto layers = test::random_layers(model->config, AqlmConfig{2, 8, 8}, 300);
  const fs::path dir = test::temp_dir("format-logits");
  save_aqlm_folder(*model, layers, (dir / "out").string());
  const auto back = load_model((dir / "out").string(), test::without_tokenizer());
  EXPECT_TRUE(back->weights.has("model.layers.1.self_attn.k_proj.bias"));
  const auto dense = dequantized_copy(*back);
  const auto ids = some_ids(model->config.vocab_size, 5);
  // Same fp16 values on both sides, fp32 arithmetic in another order (lookup tables vs GEMM):
  // ~1e-6 in practice; 1e-4 still fails for one wrong code, scale or bias.
  const double prefill = test::relative_difference(test::logits_of(*back, ids), test::logits_of(*dense, ids));
  RecordProperty("relative_difference", str(prefill));
  EXPECT_LT(prefill, 1e-4);
  // Decode token by token (the small-batch AQLM kernels) agrees too.
  auto engine = create_engine(*back);
  std::vector<float> one(size_t(model->config.vocab_size));
  const auto full = test::logits_of(*dense, ids);
  for (size_t t = 0; t < ids.size(); ++t) {
    engine->forward(std::span<const int32_t>(&ids[t], 1), one.data());
    const std::vector<float> expected(full.begin() + long(t * one.size()), full.begin() + long((t + 1) * one.size()));
    EXPECT_LT(test::relative_difference(one, expected), 1e-4) << "position " << t;
  }
  fs::remove_all(dir);
}

TEST(AqlmWriter, Stories260KWithTokenizerRoundTrips) {
  // A real model with its tokenizer: 1x8g4 (w2 has 172 inputs, a multiple of 4, not of 8).
  AQLM_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  const auto model = load_model(path.string());
  const auto layers = test::random_layers(model->config, AqlmConfig{1, 8, 4}, 400);
  const fs::path dir = test::temp_dir("format-stories");
  save_aqlm_folder(*model, layers, (dir / "out").string());
  const auto back = load_model((dir / "out").string());
  ASSERT_TRUE(back->tokenizer);
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  EXPECT_EQ(back->tokenizer->encode(text), model->tokenizer->encode(text));
  EXPECT_EQ(back->config.eos_token_ids, model->config.eos_token_ids);
  const auto dense = dequantized_copy(*back);
  const auto ids = back->tokenizer->encode(text);
  const double difference = test::relative_difference(test::logits_of(*back, ids), test::logits_of(*dense, ids));
  RecordProperty("relative_difference", str(difference));
  EXPECT_LT(difference, 1e-4);
  fs::remove_all(dir);
}

// ------------------------------------------------------------------ the published layout

class PublishedFolder : public ::testing::TestWithParam<const char*> {};

TEST_P(PublishedFolder, LoadsAndMatchesTheFloat64Reference) {
  // Written by scripts/reference/aqlm_format_published.py the way the authors' converter does.
  const fs::path folder = test::source_path(std::string("tests/fixtures/format/") + GetParam());
  const json ref = read_json(folder / "reference.json");
  const auto model = load_model(folder.string(), test::without_tokenizer());
  EXPECT_EQ(model->format, ModelFormat::HuggingFaceAqlm);
  const auto ids = ref.at("ids").get<std::vector<int32_t>>();
  const auto expected = ref.at("logits").get<std::vector<std::vector<double>>>();
  const auto logits = test::logits_of(*model, ids);
  std::vector<float> flat_ref;
  for (const auto& row : expected)
    for (double v : row) flat_ref.push_back(float(v));
  // fp32 runtime against float64 numpy on the same fp16 weights: ~1e-6; 1e-4 catches a wrong
  // code (the fixture's codes are half negative), codebook or head.
  const double difference = test::relative_difference(logits, flat_ref);
  RecordProperty("relative_difference", str(difference));
  EXPECT_LT(difference, 1e-4);

  // The reader turns the negative stored codes back into indices >= 2^(B-1).
  const auto prefixes = quantized_prefixes(model->weights, model->config);
  ASSERT_FALSE(prefixes.empty());
  const QuantizedLayer q = read_quantized_layer(*model, prefixes.front());
  const TensorView& raw = model->weights.get(prefixes.front() + ".codes");
  const int B = q.config.nbits;
  for (size_t i = 0; i < q.codes.size(); ++i) {
    const int32_t stored = raw.dtype == DType::I8 ? raw.as<int8_t>()[i] : raw.as<int16_t>()[i];
    ASSERT_EQ(int32_t(q.codes[i]), stored < 0 ? stored + (1 << B) : stored) << i;
  }

  // Written again by our writer (the AQLM projections pass through): same codes, same logits,
  // dense projections and the head kept as they were.
  const fs::path dir = test::temp_dir(std::string("format-republish-") + GetParam());
  save_aqlm_folder(*model, std::map<std::string, QuantizedLayer>{}, (dir / "out").string());
  const auto again = load_model((dir / "out").string(), test::without_tokenizer());
  EXPECT_EQ(quantized_prefixes(again->weights, again->config), prefixes);
  EXPECT_EQ(read_quantized_layer(*again, prefixes.front()).codes, q.codes);
  EXPECT_EQ(test::logits_of(*again, ids), logits);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PublishedFolder, ::testing::Values("published_2x8g8", "published_1x16g8"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace aqlm
