// Hugging Face folders: reading (sharded, AQLM, chat templates, generation_config), writing
// (round trips bit-exact, dtype conversion, sharding, overwrite rules, failure leaves nothing),
// and load_model's choice of format.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/half.h"
#include "core/common/paths.h"
#include "core/model/hf_folder.h"
#include "core/model/model.h"
#include "core/model/safetensors.h"
#include "core/text/tokenizer.h"
#include "tests/support/test_paths.h"

using namespace aqlm;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path fixture(const std::string& name) { return test::source_path("tests/fixtures/model/" + name); }

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
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

// Same names, shapes, dtypes and bytes.
void expect_same_weights(const WeightStore& a, const WeightStore& b) {
  ASSERT_EQ(a.names(), b.names());
  for (const auto& name : a.names()) {
    const TensorView& x = a.get(name);
    const TensorView& y = b.get(name);
    EXPECT_EQ(x.shape, y.shape) << name;
    ASSERT_EQ(x.dtype, y.dtype) << name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0) << name;
  }
}

// No file or folder in `dir` other than `allowed`.
std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

LoadOptions without_tokenizer() {
  LoadOptions o;
  o.load_tokenizer = false;
  return o;
}

}  // namespace

TEST(HfFolder, ReadsShardedFolderOfThePythonPackage) {
  const auto model = load_model(fixture("hf_tiny_sharded").string(), without_tokenizer());
  EXPECT_EQ(model->format, ModelFormat::HuggingFace);
  EXPECT_EQ(model->config.num_layers, 1);
  EXPECT_EQ(model->config.torch_dtype, "float16");
  EXPECT_EQ(model->config.eos_token_ids, (std::vector<int>{2, 5}));  // config.json's 2, then generation_config's 5
  EXPECT_EQ(model->chat_template, "{{ messages[0].content }}");      // the one named "default"
  EXPECT_EQ(model->tokenizer, nullptr);
  const json expected = json::parse(read_text_file(fixture("hf_tiny_expected.json")));
  const std::string raw = read_text_file(fixture("hf_tiny_expected.f32"));
  ASSERT_EQ(model->weights.size(), expected.size());
  for (const auto& [name, e] : expected.items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(model->weights.has(name));
    EXPECT_EQ(model->weights.get(name).shape, e["shape"].get<std::vector<int64_t>>());
    const std::vector<float> v = model->weights.to_f32(name);
    ASSERT_EQ(v.size(), e["count"].get<size_t>());
    EXPECT_EQ(std::memcmp(v.data(), raw.data() + e["offset"].get<size_t>() * 4, v.size() * 4), 0);
  }
  // Views into the mapped shards, not copies.
  EXPECT_EQ(model->weights.get("model.layers.0.mlp.up_proj.weight").dtype, DType::F16);
}

TEST(HfFolder, ReadsAqlmFolderAsItIs) {
  const auto model = load_model(fixture("aqlm_tiny").string(), without_tokenizer());
  EXPECT_EQ(model->format, ModelFormat::HuggingFaceAqlm);
  ASSERT_TRUE(model->config.aqlm.has_value());
  EXPECT_EQ(model->config.aqlm->nbits_per_codebook, 8);
  const TensorView& codes = model->weights.get("model.layers.0.mlp.down_proj.codes");
  EXPECT_EQ(codes.dtype, DType::I8);
  EXPECT_EQ(codes.shape, (std::vector<int64_t>{32, 8, 1}));
  EXPECT_EQ(model->weights.get("model.layers.0.mlp.down_proj.codebooks").shape, (std::vector<int64_t>{1, 256, 1, 8}));
  EXPECT_EQ(model->weights.get("model.layers.0.self_attn.q_proj.scales").shape, (std::vector<int64_t>{32, 1, 1, 1}));
  EXPECT_TRUE(model->weights.has("model.layers.0.self_attn.k_proj.weight"));  // kept dense
  EXPECT_FALSE(model->weights.has("model.layers.0.self_attn.k_proj.codes"));

  // Written back as it is, even when a float dtype is asked for: codes, codebooks and scales
  // only make sense in their own dtypes.
  const fs::path dir = test::temp_dir("hf-aqlm-roundtrip");
  SaveOptions f32;
  f32.dtype = DType::F32;
  save_hf_folder(*model, (dir / "aqlm").string(), f32);
  const auto back = load_model((dir / "aqlm").string(), without_tokenizer());
  EXPECT_EQ(back->format, ModelFormat::HuggingFaceAqlm);
  EXPECT_EQ(back->config.to_hf_json(), model->config.to_hf_json());
  EXPECT_EQ(back->config.torch_dtype, "float16");
  expect_same_weights(back->weights, model->weights);
  fs::remove_all(dir);
}

TEST(HfFolder, AqlmShapeAndDtypeErrorsNameTheTensor) {
  const fs::path dir = test::temp_dir("hf-aqlm-bad");
  const SafetensorsFile good(fixture("aqlm_tiny/model.safetensors").string());
  // Rewrites the fixture with `edit` applied to its tensor list, and expects `fragments`.
  auto variant = [&](const std::string& name, const std::function<void(WeightStore&)>& edit,
                     const std::vector<std::string>& fragments) {
    SCOPED_TRACE(name);
    const fs::path folder = dir / name;
    fs::create_directories(folder);
    fs::copy_file(fixture("aqlm_tiny/config.json"), folder / "config.json");
    WeightStore store;
    good.add_to(store);
    edit(store);
    std::vector<SafetensorsEntry> entries;
    for (const auto& n : store.names()) entries.push_back({n, store.get(n).dtype, store.get(n).shape});
    SafetensorsWriter w((folder / "model.safetensors").string(), entries);
    for (const auto& n : store.names()) w.write(n, store.get(n));
    w.finish();
    expect_error([&] { load_model(folder.string(), without_tokenizer()); }, fragments);
  };
  const std::vector<int16_t> wide(32 * 8, 1);
  variant("codes_i16", [&](WeightStore& s) {
    s.add_owned("model.layers.0.mlp.down_proj.codes", DType::I16, {32, 8, 1},
                std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(wide.data()),
                                     reinterpret_cast<const uint8_t*>(wide.data()) + wide.size() * 2));
  }, {"codes_i16", "model.layers.0.mlp.down_proj.codes", "I16", "I8"});
  variant("codebooks_shape", [&](WeightStore& s) {
    TensorView v = s.get("model.layers.0.self_attn.q_proj.codebooks");
    v.shape = {1, 128, 2, 8};
    s.add_view("model.layers.0.self_attn.q_proj.codebooks", v);
  }, {"model.layers.0.self_attn.q_proj.codebooks", "[1, 128, 2, 8]", "[1, 256, 1, 8]"});
  variant("no_scales", [&](WeightStore& s) { s.remove("model.layers.0.mlp.up_proj.scales"); },
          {"model.layers.0.mlp.up_proj.scales", "missing"});
  variant("int_scales", [&](WeightStore& s) {
    s.add_owned("model.layers.0.mlp.up_proj.scales", DType::I16, {64, 1, 1, 1}, std::vector<uint8_t>(128, 0));
  }, {"model.layers.0.mlp.up_proj.scales", "I16", "float"});
  variant("both", [&](WeightStore& s) {
    s.add_view("model.layers.0.mlp.up_proj.weight", s.get("model.layers.0.mlp.gate_proj.codes"));
  }, {"model.layers.0.mlp.up_proj", "both a dense weight and AQLM codes"});
  fs::remove_all(dir);
}

TEST(HfFolder, DenseFolderErrorsNameFileAndTensor) {
  const fs::path dir = test::temp_dir("hf-bad");
  auto load = [](const fs::path& p) { return [p] { load_model(p.string(), without_tokenizer()); }; };
  auto copy = [&](const std::string& name) {
    fs::copy(fixture("hf_tiny_sharded"), dir / name);
    return dir / name;
  };
  fs::remove(copy("no_config") / "config.json");
  expect_error(load(dir / "no_config"), {"no_config", "config.json is missing"});

  json config = json::parse(read_text_file(fixture("hf_tiny_sharded/config.json")));
  json c1 = config;
  c1.erase("num_hidden_layers");
  write_bytes(copy("no_layers") / "config.json", c1.dump());
  expect_error(load(dir / "no_layers"), {"no_layers", "config.json", "num_hidden_layers"});
  json c2 = config;
  c2["intermediate_size"] = 60;
  write_bytes(copy("shape") / "config.json", c2.dump());
  expect_error(load(dir / "shape"), {"shape", "model.layers.0.mlp.", "[64, 32]", "[60, 32]"});
  json c3 = config;
  c3["tie_word_embeddings"] = true;  // lm_head.weight is then dropped: still loads
  write_bytes(copy("tied") / "config.json", c3.dump());
  EXPECT_FALSE(load_model((dir / "tied").string(), without_tokenizer())->weights.has("lm_head.weight"));
  json c4 = config;
  c4["num_hidden_layers"] = 2;
  write_bytes(copy("missing") / "config.json", c4.dump());
  expect_error(load(dir / "missing"), {"missing", "model.layers.1.", "is missing"});
  write_bytes(copy("bad_json") / "config.json", "{");
  expect_error(load(dir / "bad_json"), {"bad_json", "config.json", "not valid JSON"});
  expect_error([&] { load_model(fixture("hf_tiny_sharded").string()); }, {"hf_tiny_sharded", "tokenizer.json is missing"});

  // A tensor the architecture has no place for.
  const fs::path extra = copy("extra");
  const std::vector<float> one(32, 1.0f);
  SafetensorsWriter w((extra / "model-00003.safetensors").string(),
                      {{"model.layers.0.self_attn.q_norm.weight", DType::F32, {32}}});
  w.write("model.layers.0.self_attn.q_norm.weight", TensorView{DType::F32, {32}, one.data()});
  w.finish();
  json index = json::parse(read_text_file(extra / "model.safetensors.index.json"));
  index["weight_map"]["model.layers.0.self_attn.q_norm.weight"] = "model-00003.safetensors";
  write_bytes(extra / "model.safetensors.index.json", index.dump());
  expect_error(load(extra), {"extra", "model.layers.0.self_attn.q_norm.weight", "not part of a llama model"});
  fs::remove_all(dir);
}

TEST(HfFolder, ChatTemplateFromJinjaFile) {
  const fs::path dir = test::temp_dir("hf-jinja");
  fs::copy(fixture("hf_tiny_sharded"), dir / "m");
  fs::remove(dir / "m" / "tokenizer_config.json");
  write_bytes(dir / "m" / "chat_template.jinja", "{{ bos_token }}JINJA");
  EXPECT_EQ(load_model((dir / "m").string(), without_tokenizer())->chat_template, "{{ bos_token }}JINJA");
  fs::remove_all(dir);
}

TEST(HfFolder, Llama2cRoundTripIsBitExact) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const auto source = load_model(model_path.string());
  ASSERT_NE(source->tokenizer, nullptr);  // tok512.bin beside the model
  EXPECT_EQ(source->format, ModelFormat::Llama2c);
  const fs::path dir = test::temp_dir("hf-llama2c");
  save_hf_folder(*source, (dir / "stories").string());
  EXPECT_EQ(entries_of(dir), std::vector<std::string>{"stories"});  // no temporary folder left
  EXPECT_EQ(entries_of(dir / "stories"), (std::vector<std::string>{"config.json", "generation_config.json",
                                                                   "model.safetensors", "tokenizer.json",
                                                                   "tokenizer_config.json"}));
  const auto back = load_model((dir / "stories").string());
  EXPECT_EQ(back->format, ModelFormat::HuggingFace);
  EXPECT_EQ(back->config.to_hf_json(), source->config.to_hf_json());
  expect_same_weights(back->weights, source->weights);  // F32 (the llama2.c default): bit-exact
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  EXPECT_EQ(back->tokenizer->encode(text), source->tokenizer->encode(text));
  EXPECT_EQ(back->tokenizer->vocab_size(), 512);

  // F16: every value is the source rounded to nearest even; BF16 likewise.
  SaveOptions f16;
  f16.dtype = DType::F16;
  save_hf_folder(*source, (dir / "f16").string(), f16);
  const auto half = load_model((dir / "f16").string(), without_tokenizer());
  EXPECT_EQ(half->config.torch_dtype, "float16");
  for (const auto& name : source->weights.names()) {
    const TensorView& t = half->weights.get(name);
    ASSERT_EQ(t.dtype, DType::F16) << name;
    const std::vector<float> src = source->weights.to_f32(name);
    for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(t.as<uint16_t>()[i], f32_to_f16(src[i])) << name << " " << i;
  }
  SaveOptions bf16;
  bf16.dtype = DType::BF16;
  save_hf_folder(*half, (dir / "bf16_from_f16").string(), bf16);
  const auto brain = load_model((dir / "bf16_from_f16").string(), without_tokenizer());
  const TensorView& q = brain->weights.get("model.layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(q.dtype, DType::BF16);
  const std::vector<float> q_half = half->weights.to_f32("model.layers.3.self_attn.q_proj.weight");
  for (size_t i = 0; i < q_half.size(); ++i) ASSERT_EQ(q.as<uint16_t>()[i], f32_to_bf16(q_half[i]));
  // A folder saved from an F16 folder stays F16 by default.
  save_hf_folder(*half, (dir / "f16_again").string());
  expect_same_weights(load_model((dir / "f16_again").string(), without_tokenizer())->weights, half->weights);
  fs::remove_all(dir);
}

TEST(HfFolder, ShardsAboveTheLimit) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const auto source = load_model(model_path.string());
  const fs::path dir = test::temp_dir("hf-shards");
  SaveOptions options;
  options.max_shard_bytes = 300 * 1000;  // the model has 1,040,128 bytes of F32
  save_hf_folder(*source, (dir / "m").string(), options);
  const json index = json::parse(read_text_file(dir / "m" / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 260032 * 4);
  EXPECT_EQ(index["weight_map"].size(), source->weights.size());
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  EXPECT_EQ(shards.size(), 4u);
  EXPECT_TRUE(shards.count("model-00001-of-00004.safetensors"));
  for (const auto& s : shards) EXPECT_LE(fs::file_size(dir / "m" / s), 300 * 1000 + 4096) << s;
  EXPECT_FALSE(fs::exists(dir / "m" / "model.safetensors"));
  // Layers in numeric order: layer 0 in the first shard, layer 4 in the last.
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"], "model-00001-of-00004.safetensors");
  EXPECT_EQ(index["weight_map"]["model.layers.4.mlp.down_proj.weight"], "model-00004-of-00004.safetensors");
  expect_same_weights(load_model((dir / "m").string())->weights, source->weights);
  fs::remove_all(dir);
}

TEST(HfFolder, RefusesExistingFolderUnlessOverwrite) {
  const auto source = load_model(fixture("hf_tiny_sharded").string(), without_tokenizer());
  const fs::path dir = test::temp_dir("hf-overwrite");
  fs::create_directories(dir / "out");
  write_bytes(dir / "out" / "old.txt", "old");
  expect_error([&] { save_hf_folder(*source, (dir / "out").string()); }, {"out", "already exists"});
  EXPECT_TRUE(fs::exists(dir / "out" / "old.txt"));
  SaveOptions overwrite;
  overwrite.overwrite = true;
  save_hf_folder(*source, (dir / "out/").string(), overwrite);
  EXPECT_FALSE(fs::exists(dir / "out" / "old.txt"));
  EXPECT_EQ(entries_of(dir), std::vector<std::string>{"out"});
  const auto back = load_model((dir / "out").string(), without_tokenizer());
  expect_same_weights(back->weights, source->weights);  // dtypes kept (F16 weights, F32 norms): bit-exact
  EXPECT_EQ(back->config.eos_token_ids, (std::vector<int>{2, 5}));
  write_bytes(dir / "file", "x");
  expect_error([&] { save_hf_folder(*source, (dir / "file").string(), overwrite); }, {"file", "not a folder"});
  SaveOptions i8;
  i8.dtype = DType::I8;
  expect_error([&] { save_hf_folder(*source, (dir / "i8").string(), i8); }, {"I8", "supported: F32, F16, BF16"});
  fs::remove_all(dir);
}

TEST(HfFolder, WriteFailureLeavesNothingThatLooksComplete) {
  // The file size limit stands in for a full disk (EFBIG instead of ENOSPC); a child process
  // carries it so the test runner is unaffected.
  const auto source = load_model(fixture("hf_tiny_sharded").string(), without_tokenizer());
  const fs::path dir = test::temp_dir("hf-full");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{8 * 1024, 8 * 1024};  // config.json fits; the 18 KB shard of F32 values does not
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      SaveOptions f32;
      f32.dtype = DType::F32;
      save_hf_folder(*source, (dir / "out").string(), f32);
    } catch (const Error& e) {
      message = e.what();
    }
    (void)!::write(pipe_fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0) message.append(buffer, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_TRUE(entries_of(dir).empty()) << "left behind: " << (entries_of(dir).empty() ? "" : entries_of(dir)[0]);
  fs::remove_all(dir);
}

TEST(ModelLoader, ChoosesTheFormatOrSaysWhyNot) {
  EXPECT_STREQ(model_format_name(ModelFormat::Gguf), "GGUF");
  EXPECT_STREQ(model_format_name(ModelFormat::HuggingFaceAqlm), "Hugging Face AQLM");
  const auto gguf = load_model(fixture("tiny_qwen2.gguf").string(), without_tokenizer());
  EXPECT_EQ(gguf->format, ModelFormat::Gguf);
  EXPECT_EQ(gguf->config.arch, Architecture::Qwen2);
  EXPECT_FALSE(gguf->metadata.empty());
  EXPECT_EQ(gguf->source_path, fixture("tiny_qwen2.gguf").string());

  const fs::path dir = test::temp_dir("loader");
  expect_error([&] { load_model((dir / "absent.gguf").string()); }, {"absent.gguf", "no such file or folder"});
  expect_error([&] { load_model(fixture("hf_tiny_sharded/model-00001-of-00002.safetensors").string()); },
               {"model-00001-of-00002.safetensors", "open its folder", "hf_tiny_sharded"});
  write_bytes(dir / "fake.gguf", "GGML....");
  expect_error([&] { load_model((dir / "fake.gguf").string()); }, {"fake.gguf", "not a GGUF file"});
  write_bytes(dir / "notes.txt", "hello");
  expect_error([&] { load_model((dir / "notes.txt").string()); }, {"notes.txt", "not a recognised model"});
  expect_error([&] { load_model(""); }, {"no model path"});
  fs::remove_all(dir);
}

TEST(ModelLoader, Llama2cTokenizerOptions) {
  AQLM_REQUIRE_SHARED(model_path, "models/stories260K/stories260K.bin");
  const fs::path dir = test::temp_dir("loader-l2c");
  fs::copy_file(model_path, dir / "m.bin");
  EXPECT_EQ(load_model((dir / "m.bin").string())->tokenizer, nullptr);  // none beside it: ids only
  LoadOptions explicit_tok;
  explicit_tok.tokenizer_path = (model_path.parent_path() / "tok512.bin").string();
  const auto with = load_model((dir / "m.bin").string(), explicit_tok);
  ASSERT_NE(with->tokenizer, nullptr);
  // The README's golden ids: BOS, then " Once upon a time" as 403 407 261 378.
  const std::vector<int32_t> ids = with->tokenizer->encode("Once upon a time");
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  explicit_tok.tokenizer_path = (dir / "nope.bin").string();
  expect_error([&] { load_model((dir / "m.bin").string(), explicit_tok); }, {"nope.bin", "not found"});
  fs::remove_all(dir);
}

TEST(ModelLoader, SmolLM2GgufToHfFolderRoundTrip) {
  AQLM_REQUIRE_SMOLLM2(path);
  const auto source = load_model(path.string());
  ASSERT_NE(source->tokenizer, nullptr);
  EXPECT_EQ(source->tokenizer->vocab_size(), 49152);
  const fs::path dir = test::temp_dir("smollm2-hf");
  save_hf_folder(*source, (dir / "smollm2").string());  // F32: dequantized values are exact
  const auto back = load_model((dir / "smollm2").string());
  EXPECT_EQ(back->config.to_hf_json(), source->config.to_hf_json());
  expect_same_weights(back->weights, source->weights);
  EXPECT_EQ(back->chat_template, source->chat_template);
  const std::string text = "Hello! How many r's are in \"strawberry\"? 12345";
  EXPECT_EQ(back->tokenizer->encode(text), source->tokenizer->encode(text));
  EXPECT_EQ(back->tokenizer->eos_id(), source->tokenizer->eos_id());
  fs::remove_all(dir);
}
