// The writers' unhappy paths (each leaves nothing behind) and the dequantized GPTQ/RTN folder.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/common/paths.h"
#include "core/format/aqlm_writer.h"
#include "tests/format/format_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::expect_error;

// Runs `fn` in a child process under a file size limit of `limit_bytes` (a full disk gives
// ENOSPC, the limit EFBIG: both are write failures) and returns its error message.
std::string error_under_file_size_limit(size_t limit_bytes, const std::function<void()>& fn) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "pipe failed";
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{limit_bytes, limit_bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      fn();
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
  return message;
}

class AqlmWriterErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    model = test::tiny_model(3);
    layers = test::random_layers(model->config, AqlmConfig{2, 8, 8}, 50);
    dir = test::temp_dir("format-errors");
  }
  void TearDown() override { fs::remove_all(dir); }
  void expect_nothing_written() { EXPECT_TRUE(test::entries_of(dir).empty()) << test::entries_of(dir).front(); }

  std::unique_ptr<Model> model;
  std::map<std::string, QuantizedLayer> layers;
  fs::path dir;
};

TEST_F(AqlmWriterErrors, ExistingFolderRefusedUnlessOverwrite) {
  fs::create_directories(dir / "out");
  std::ofstream(dir / "out" / "old.txt") << "old";
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string()); }, {"out", "already exists"});
  EXPECT_TRUE(fs::exists(dir / "out" / "old.txt"));
  FolderWriteOptions overwrite;
  overwrite.overwrite = true;
  save_aqlm_folder(*model, layers, (dir / "out").string(), overwrite);
  EXPECT_FALSE(fs::exists(dir / "out" / "old.txt"));
  EXPECT_TRUE(fs::exists(dir / "out" / kAqlmStudioJson));
  EXPECT_EQ(test::entries_of(dir), std::vector<std::string>{"out"});  // the old folder is gone too
}

TEST_F(AqlmWriterErrors, WriteFailureLeavesNothingThatLooksComplete) {
  // config.json fits under 16 KB; the ~120 KB model.safetensors does not.
  const std::string message = error_under_file_size_limit(16 * 1024, [&] {
    save_aqlm_folder(*model, layers, (dir / "out").string());
  });
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, FailingLayerSourceLeavesNothing) {
  // A streamed source whose fifth layer cannot be read (a damaged checkpoint): the error
  // surfaces and the partial folder is removed.
  AqlmLayerSource source;
  source.config = AqlmConfig{2, 8, 8};
  int loads = 0;
  for (const auto& [p, _] : layers) source.prefixes.push_back(p);
  source.load = [&](const std::string& p) -> std::shared_ptr<const QuantizedLayer> {
    if (++loads == 5) fail(p, ": checkpoint file damaged");
    return std::make_shared<const QuantizedLayer>(layers.at(p));
  };
  expect_error([&] { save_aqlm_folder(*model, source, (dir / "out").string()); }, {"checkpoint file damaged"});
  EXPECT_EQ(loads, 5);
  expect_nothing_written();
  // A layer of another config coming from the source mid-way fails the same way.
  source.load = [&](const std::string& p) -> std::shared_ptr<const QuantizedLayer> {
    auto q = layers.at(p);
    if (p == "model.layers.1.mlp.up_proj") q = test::random_layer(q.out_features, q.in_features, AqlmConfig{1, 8, 8}, 1);
    return std::make_shared<const QuantizedLayer>(q);
  };
  expect_error([&] { save_aqlm_folder(*model, source, (dir / "out").string()); },
               {"model.layers.1.mlp.up_proj is 1x8g8", "folder's AQLM config is 2x8g8"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, LayerWithAnotherConfigIsRefused) {
  const auto [out, in] = projection_shape(model->config, "model.layers.1.mlp.gate_proj");
  layers["model.layers.1.mlp.gate_proj"] = test::random_layer(out, in, AqlmConfig{1, 16, 8}, 9);
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string()); },
               {"model.layers.1.mlp.gate_proj is 1x16g8", "model.layers.0.self_attn.q_proj is 2x8g8",
                "one quantization_config per model"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, CodesOutOfRangeAreRefused) {
  auto& q = layers.at("model.layers.0.mlp.down_proj");
  q.config = AqlmConfig{2, 8, 8};
  q.codes[17] = 256;
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string()); },
               {"model.layers.0.mlp.down_proj", "code 256 at position 17", "2^8"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, ValuesThatFloat16CannotHoldAreRefused) {
  layers.at("model.layers.1.self_attn.v_proj").codebooks[3] = 1e6f;
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string()); },
               {"model.layers.1.self_attn.v_proj.codebooks", "position 3", "not finite in float16"});
  layers = test::random_layers(model->config, AqlmConfig{2, 8, 8}, 50);
  layers.at("model.layers.0.self_attn.k_proj").scales[0] = std::nanf("");
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string()); },
               {"model.layers.0.self_attn.k_proj.scales", "position 0"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, LayoutErrorsNameTheLayer) {
  auto bad = layers;
  bad["model.layers.2.mlp.down_proj"] = bad.at("model.layers.1.mlp.down_proj");
  expect_error([&] { save_aqlm_folder(*model, bad, (dir / "out").string()); },
               {"model.layers.2.mlp.down_proj", "not a projection of this 2-layer model"});
  bad = layers;
  bad["model.layers.0.mlp.up_proj"] = bad.at("model.layers.0.mlp.down_proj");  // [64, 96] where [96, 64] belongs
  expect_error([&] { save_aqlm_folder(*model, bad, (dir / "out").string()); },
               {"model.layers.0.mlp.up_proj", "[64, 96]", "[96, 64]"});
  // A projection neither quantized nor dense.
  bad = layers;
  bad.erase("model.layers.1.self_attn.o_proj");
  model->weights.remove("model.layers.1.self_attn.o_proj.weight");
  expect_error([&] { save_aqlm_folder(*model, bad, (dir / "out").string()); },
               {"model.layers.1.self_attn.o_proj is neither quantized nor kept dense"});
  expect_error([&] { save_aqlm_folder(*model, std::map<std::string, QuantizedLayer>{}, (dir / "out").string()); },
               {"no quantized projection"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, GroupSizeMustDivideTheInputs) {
  // down_proj has 96 inputs: 2x8g64 does not fit it (the writer says to keep it dense).
  const AqlmConfig g64{1, 8, 64};
  std::map<std::string, QuantizedLayer> wide;
  const auto [out, in] = projection_shape(model->config, "model.layers.0.self_attn.q_proj");
  wide["model.layers.0.self_attn.q_proj"] = test::random_layer(out, in, g64, 1);
  wide["model.layers.0.mlp.down_proj"] = test::random_layer(64, 64, g64, 2);
  wide["model.layers.0.mlp.down_proj"].in_features = 96;
  expect_error([&] { save_aqlm_folder(*model, wide, (dir / "out").string()); },
               {"model.layers.0.mlp.down_proj", "96 input", "not a multiple of the group size 64"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, StudioFieldsMustAgreeWithTheFolder) {
  FolderWriteOptions options;
  options.studio = {{"config", "1x16g8"}};
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string(), options); },
               {"aqlm_studio.json", "'config'", "\"1x16g8\"", "\"2x8g8\""});
  options.studio = json::array({1});
  expect_error([&] { save_aqlm_folder(*model, layers, (dir / "out").string(), options); }, {"JSON object"});
  expect_nothing_written();
}

TEST_F(AqlmWriterErrors, ReaderNamesWhatIsWrong) {
  const auto two12 = test::random_layers(model->config, AqlmConfig{2, 12, 8}, 60);
  save_aqlm_folder(*model, two12, (dir / "out").string());
  auto back = load_model((dir / "out").string(), test::without_tokenizer());
  const std::string p = "model.layers.0.mlp.gate_proj";
  EXPECT_EQ(read_quantized_layer(*back, p).codes, two12.at(p).codes);
  // A stored value no writer produces (5000 does not fit 12 bits either way) is refused.
  const TensorView codes = back->weights.get(p + ".codes");
  std::vector<uint8_t> bytes(static_cast<const uint8_t*>(codes.data), static_cast<const uint8_t*>(codes.data) + codes.nbytes());
  reinterpret_cast<int16_t*>(bytes.data())[7] = 5000;
  back->weights.add_owned(p + ".codes", DType::I16, codes.shape, bytes);
  expect_error([&] { read_quantized_layer(*back, p); }, {p + ".codes", "stored code 5000 at position 7", "12-bit"});
  back->weights.add_owned(p + ".codes", DType::I16, {96, 8, 1}, std::vector<uint8_t>(96 * 8 * 2));
  expect_error([&] { read_quantized_layer(*back, p); }, {p + ".codes", "[96, 8, 1]", "[96, 8, 2]"});
  back->weights.remove(p + ".scales");
  expect_error([&] { read_quantized_layer(*back, p); }, {p + ".scales", "missing"});
  expect_error([&] { read_quantized_layer(*back, "model.layers.0.mlp.gate"); }, {"model.layers.0.mlp.gate", "not a projection"});
  expect_error([&] { read_quantized_layer(*model, p); }, {p, "no AQLM quantization_config"});
  fs::remove_all(dir / "out");
}

// ------------------------------------------------------------------ GPTQ / RTN: dequantized fp16

TEST(DequantizedFolder, ProjectionsReplacedAndRecorded) {
  const auto model = test::tiny_model(4, /*qwen2=*/false, /*tied=*/false);
  std::map<std::string, std::vector<float>> weights;
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (const auto& p : {"model.layers.0.mlp.up_proj", "model.layers.1.self_attn.q_proj"}) {
    const auto [out, in] = projection_shape(model->config, p);
    auto& v = weights[p];
    v.resize(size_t(out * in));
    for (float& x : v) x = normal(rng);
  }
  const fs::path dir = test::temp_dir("format-dequantized");
  FolderWriteOptions options;
  options.studio = {{"results", {{"perplexity", 12.5}}}};
  save_dequantized_folder(*model, weights, DenseQuantization{"rtn", "w3g64", 3.25}, (dir / "out").string(), options);
  const auto back = load_model((dir / "out").string(), test::without_tokenizer());
  EXPECT_EQ(back->format, ModelFormat::HuggingFace);
  EXPECT_FALSE(back->config.aqlm);
  EXPECT_EQ(back->config.torch_dtype, "float16");
  for (const auto& name : back->weights.names()) {
    const TensorView& t = back->weights.get(name);
    ASSERT_EQ(t.dtype, DType::F16) << name;
    const std::string owner = name.substr(0, name.size() - 7);
    const std::vector<float> expected = weights.count(owner) ? weights.at(owner) : model->weights.to_f32(name);
    for (size_t i = 0; i < expected.size(); ++i) ASSERT_EQ(t.as<uint16_t>()[i], f32_to_f16(expected[i])) << name << " " << i;
  }
  const json s = json::parse(read_text_file(dir / "out" / kAqlmStudioJson));
  EXPECT_EQ(s.at("method"), "rtn");
  EXPECT_EQ(s.at("config"), "w3g64");
  EXPECT_EQ(s.at("storage"), "hf-fp16-dequantized");
  EXPECT_EQ(s.at("bits_per_parameter"), 3.25);
  EXPECT_EQ(s.at("quantized_projections"), 2);
  EXPECT_EQ(s.at("dense_projections").size(), 12u);
  EXPECT_EQ(s.at("results").at("perplexity"), 12.5);

  // A model whose projections already hold their dequantized weights (the pipeline's output).
  DenseQuantization in_model{"gptq", "w2g64", 2.25, {"model.layers.0.self_attn.k_proj"}};
  save_dequantized_folder(*model, weights, in_model, (dir / "both").string());
  const json both = json::parse(read_text_file(dir / "both" / kAqlmStudioJson));
  EXPECT_EQ(both.at("quantized_projections"), 3);
  EXPECT_EQ(both.at("quantized_parameters"), 96 * 64 + 64 * 64 + 32 * 64);
  in_model.dequantized_in_model = {"model.layers.0.mlp.up_proj"};
  expect_error([&] { save_dequantized_folder(*model, weights, in_model, (dir / "dup").string()); },
               {"model.layers.0.mlp.up_proj", "listed both"});
  fs::remove_all(dir);
}

TEST(DequantizedFolder, Errors) {
  const auto model = test::tiny_model(4);
  const fs::path dir = test::temp_dir("format-dequantized-errors");
  const DenseQuantization gptq{"gptq", "w2g64", 2.25};
  expect_error([&] { save_dequantized_folder(*model, {{"model.layers.0.mlp.up_proj", {1.0f, 2.0f}}}, gptq, (dir / "o").string()); },
               {"model.layers.0.mlp.up_proj", "2 dequantized values, expected 96 x 64"});
  expect_error([&] { save_dequantized_folder(*model, {{"lm_head", {1.0f}}}, gptq, (dir / "o").string()); },
               {"lm_head", "not a projection"});
  std::vector<float> huge(size_t(96 * 64), 0.0f);
  huge[5] = 70000.0f;
  expect_error([&] { save_dequantized_folder(*model, {{"model.layers.0.mlp.up_proj", huge}}, gptq, (dir / "o").string()); },
               {"model.layers.0.mlp.up_proj.weight", "70000", "not finite in float16"});
  expect_error([&] { save_dequantized_folder(*model, {}, gptq, (dir / "o").string()); }, {"no quantized projection"});
  // An AQLM model takes no dequantized projections.
  const auto aqlm_dir = dir / "aqlm";
  save_aqlm_folder(*model, test::random_layers(model->config, AqlmConfig{1, 8, 8}, 1), aqlm_dir.string());
  const auto aqlm = load_model(aqlm_dir.string(), test::without_tokenizer());
  huge[5] = 0;
  expect_error([&] { save_dequantized_folder(*aqlm, {{"model.layers.0.mlp.up_proj", huge}}, gptq, (dir / "o").string()); },
               {"AQLM-quantized"});
  EXPECT_FALSE(fs::exists(dir / "o"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aqlm
