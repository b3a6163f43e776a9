// format_interop_export OUT_DIR: writes tiny AQLM folders with our writer, each with the logits
// our runtime computes for them (reference.json), for scripts/gpu/check_aqlm_transformers.py to
// load with transformers + aqlm and compare. The folders cover what the authors' kernels
// choose between (docs/aqlm-format.md): 1x16g8 (their CUDA 1x16 kernel), 2x8g8 and 1x8g8 (their
// CUDA 2x8 / 1x8 kernels), 2x12g8 (Triton), 1x8g4 on stories260K with its tokenizer (Triton,
// and a tokenizer check); plus a folder with a projection kept dense.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/format/aqlm_writer.h"
#include "core/text/tokenizer.h"
#include "tests/format/format_test_util.h"

namespace aqlm {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

void export_folder(const Model& source, const std::map<std::string, QuantizedLayer>& layers, const fs::path& dir,
                   const std::string& prompt) {
  FolderWriteOptions options;
  options.overwrite = true;
  options.studio = {{"purpose", "interoperability check (random codes)"}};
  save_aqlm_folder(source, layers, dir.string(), options);
  LoadOptions load;
  load.load_tokenizer = source.tokenizer != nullptr;
  const auto model = load_model(dir.string(), load);
  std::vector<int32_t> ids;
  if (model->tokenizer) {
    ids = model->tokenizer->encode(prompt);
  } else {
    for (int i = 0; i < 12; ++i) ids.push_back((i * 37 + 5) % model->config.vocab_size);
  }
  const std::vector<float> flat = test::logits_of(*model, ids);
  const size_t V = size_t(model->config.vocab_size);
  json logits = json::array();
  for (size_t t = 0; t < ids.size(); ++t) logits.push_back(std::vector<float>(flat.begin() + long(t * V), flat.begin() + long((t + 1) * V)));
  json ref{{"source", "tests/format/tools/interop_export.cpp (aqlm_core CPU runtime, float32)"},
           {"ids", ids},
           {"logits", logits}};
  if (model->tokenizer) ref["prompt"] = prompt;
  write_file_atomic(dir / "reference.json", ref.dump() + "\n");
  std::cout << dir.string() << ": " << aqlm_config_of(*model->config.aqlm).name() << ", " << ids.size() << " tokens\n";
}

int run(const fs::path& out) {
  const auto llama = test::tiny_model(31, /*qwen2=*/false, /*tied=*/false);
  const auto qwen2 = test::tiny_model(32, /*qwen2=*/true, /*tied=*/true);
  export_folder(*llama, test::random_layers(llama->config, AqlmConfig{1, 16, 8}, 1000), out / "ours_1x16g8", "");
  export_folder(*qwen2, test::random_layers(qwen2->config, AqlmConfig{2, 8, 8}, 2000), out / "ours_2x8g8_qwen2", "");
  export_folder(*llama, test::random_layers(llama->config, AqlmConfig{1, 8, 8}, 3000), out / "ours_1x8g8", "");
  export_folder(*llama, test::random_layers(llama->config, AqlmConfig{2, 12, 8}, 4000), out / "ours_2x12g8", "");
  export_folder(*llama, test::random_layers(llama->config, AqlmConfig{2, 8, 8}, 5000, {"model.layers.1.mlp.down_proj"}),
                out / "ours_2x8g8_dense_down", "");
  if (const auto stories = test::shared_path("models/stories260K/stories260K.bin")) {
    const auto model = load_model(stories->string());
    export_folder(*model, test::random_layers(model->config, AqlmConfig{1, 8, 4}, 6000), out / "ours_stories_1x8g4",
                  "Once upon a time, there was a little girl named Lily.");
  } else {
    std::cout << "stories260K not found (shared/): its folder is skipped\n";
  }
  return 0;
}

}  // namespace
}  // namespace aqlm

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: format_interop_export OUT_DIR\n";
    return 2;
  }
  try {
    return aqlm::run(argv[1]);
  } catch (const aqlm::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
