// aqlm-cli convert IN OUT_DIR: any supported model (GGUF, llama2.c, HF) as an ordinary
// Hugging Face folder.
#include <cstdio>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/model/hf_folder.h"

namespace aqlm::cli {

namespace {

struct ConvertOptions {
  ModelOptions model;
  std::string out;
  std::string dtype;
  bool overwrite = false;
};

void run_convert(const ConvertOptions& o) {
  SaveOptions save;
  save.overwrite = o.overwrite;
  if (!o.dtype.empty()) {
    const std::string names[] = {"f32", "f16", "bf16"};
    const DType types[] = {DType::F32, DType::F16, DType::BF16};
    for (int i = 0; i < 3; ++i)
      if (o.dtype == names[i]) save.dtype = types[i];
    AQLM_CHECK(save.dtype, "--dtype '", o.dtype, "' is not one of f32, f16, bf16");
  }
  const auto model = load_model_or_fail(o.model);
  save_hf_folder(*model, o.out, save);
  std::printf("wrote %s (%s, %zu tensors)\n", o.out.c_str(), architecture_name(model->config.arch), model->weights.size());
}

}  // namespace

void register_convert(CLI::App& app) {
  auto options = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand("convert", "Write a model (GGUF, llama2.c, HF) as a Hugging Face folder");
  add_model_options(*cmd, options->model, false);
  cmd->add_option("OUT_DIR", options->out, "the folder to create")->required();
  cmd->add_option("--dtype", options->dtype, "f32, f16 or bf16 (default: the source's; f32 for GGUF and llama2.c)");
  cmd->add_flag("--overwrite", options->overwrite, "replace OUT_DIR if it exists");
  cmd->callback([options] { run_convert(*options); });
}

}  // namespace aqlm::cli
