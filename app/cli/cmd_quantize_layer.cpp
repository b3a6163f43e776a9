// aqlm-cli quantize-layer --tensors FILE.safetensors: one layer (tensors W and XTX) through
// AQLM, GPTQ or RTN; prints the relative output error ||(W'-W) X||^2 / ||W X||^2 and the time.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/quant/aqlm_quantizer.h"
#include "core/quant/gptq.h"
#include "core/quant/layer_problem.h"
#include "core/quant/pipeline.h"
#include "core/quant/rtn.h"

namespace aqlm::cli {

namespace {

struct LayerOptions {
  std::string tensors;
  std::string method = "aqlm";
  std::string config = "2x8g8";
  int beam = 0;
  int epochs = 100;
  double tolerance = 0.01;
  int steps = 100;
  int bits = 2;
  int64_t group_size = 64;
  uint64_t seed = 0;
  std::string device = "cpu";
  int threads = 0;
  bool json = false;
};

void run_quantize_layer(const LayerOptions& o) {
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
  const PipelineMethod method = parse_pipeline_method(o.method);
  const ComputeDevice device = parse_compute_device(o.device);
  AQLM_CHECK(device == ComputeDevice::Cpu || method == PipelineMethod::Aqlm, "quantize-layer: --device ", o.device,
             " runs AQLM only; ", o.method, " runs on the CPU (--device cpu)");
  const LayerProblem problem = load_layer_problem(o.tensors);
  const auto t0 = std::chrono::steady_clock::now();
  double relative_error = 0, bits = 0;
  std::string config;
  if (method == PipelineMethod::Aqlm) {
    AqlmOptions a;
    a.config = AqlmConfig::parse(o.config);
    a.beam_size = o.beam;
    a.max_epochs = o.epochs;
    a.relative_tolerance = o.tolerance;
    a.adam_steps = o.steps;
    a.seed = o.seed;
    a.device = device;
    const AqlmResult r = quantize_aqlm(problem, a);
    relative_error = r.relative_error;
    bits = r.layer.bits_per_parameter();
    config = a.config.name();
  } else {
    DenseQuantResult r;
    if (method == PipelineMethod::Gptq) {
      GptqOptions g;
      g.bits = o.bits;
      g.group_size = o.group_size;
      r = quantize_gptq(problem, g);
    } else {
      RtnOptions g;
      g.bits = o.bits;
      g.group_size = o.group_size;
      r = quantize_rtn(problem, g);
    }
    relative_error = problem.relative_error(r.weight);
    bits = r.bits_per_parameter;
    config = o.group_size > 0 ? str("w", o.bits, "g", o.group_size) : str("w", o.bits);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    const nlohmann::json j = {{"tensors", o.tensors},        {"layer", problem.name},
                              {"out_features", problem.out_features}, {"in_features", problem.in_features},
                              {"method", o.method},          {"config", config},
                              {"device", compute_device_name(device)},
                              {"bits_per_parameter", bits},  {"relative_error", relative_error},
                              {"seconds", seconds}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s [%lld x %lld] %s %s: relative error %.6e, %.4f bits per parameter, %s\n", problem.name.c_str(),
                static_cast<long long>(problem.out_features), static_cast<long long>(problem.in_features),
                o.method.c_str(), config.c_str(), relative_error, bits, format_duration(seconds).c_str());
  }
}

}  // namespace

void register_quantize_layer(CLI::App& app) {
  auto o = std::make_shared<LayerOptions>();
  CLI::App* cmd = app.add_subcommand("quantize-layer", "Quantize one layer (W and XTX from a .safetensors file) and report its error");
  cmd->add_option("--tensors", o->tensors, ".safetensors holding W [out, in] and XTX [in, in]")->required();
  cmd->add_option("--method", o->method, "aqlm, gptq or rtn")->capture_default_str();
  cmd->add_option("--config", o->config, "AQLM MxBgG")->capture_default_str();
  cmd->add_option("--beam", o->beam, "AQLM beam size (0: the recipe's default)")->capture_default_str();
  cmd->add_option("--layer-epochs", o->epochs, "AQLM: most Adam + beam-search rounds")->capture_default_str();
  cmd->add_option("--layer-tolerance", o->tolerance, "AQLM: stop when a round improves by less than this")
      ->capture_default_str();
  cmd->add_option("--layer-steps", o->steps, "AQLM: Adam steps per round")->capture_default_str();
  cmd->add_option("--bits", o->bits, "GPTQ/RTN bits")->capture_default_str();
  cmd->add_option("--group-size", o->group_size, "GPTQ/RTN group size (0: one per row)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda (AQLM on one GPU)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)");
  cmd->add_flag("--json", o->json, "print JSON");
  cmd->callback([o] { run_quantize_layer(*o); });
}

}  // namespace aqlm::cli
