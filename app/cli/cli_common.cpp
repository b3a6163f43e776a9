#include "app/cli/cli_common.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/common/thread_pool.h"

namespace aqlm::cli {
namespace fs = std::filesystem;

static constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_engine) {
  cmd.add_option("MODEL", options.model,
                 "Hugging Face folder, .gguf file, llama2.c .bin, or 'default' (SmolLM2-135M-Instruct)")
      ->required();
  cmd.add_option("--tokenizer", options.tokenizer, "llama2.c tokenizer .bin (default: one found beside the model)");
  if (with_engine) {
    cmd.add_option("--device", options.device, "auto (the GPU when one works, else the CPU), cpu or cuda")
        ->capture_default_str();
    cmd.add_option("--threads", options.threads, "CPU threads (default: all cores)");
    cmd.add_option("--ctx", options.context, "context length / KV cache size in tokens (default: the model's, at most 4096)");
  }
}

std::string resolve_model_path(const std::string& model) {
  if (model != "default") return model;
  const fs::path p = models_cache_dir() / kDefaultModelFile;
  if (!fs::exists(p)) fail("the default model is not installed (", p.string(), "); run: bash scripts/setup.sh");
  return p.string();
}

std::unique_ptr<Model> load_model_or_fail(const ModelOptions& options) {
  LoadOptions load;
  load.tokenizer_path = options.tokenizer;
  return load_model(resolve_model_path(options.model), load);
}

std::unique_ptr<Engine> create_engine_for(const Model& model, const ModelOptions& options) {
  if (options.threads > 0) ThreadPool::set_default_threads(options.threads);
  EngineOptions e;
  e.context_length = options.context;
  e.threads = options.threads;
  if (options.device != "auto") {
    e.device = parse_device(options.device);
    return create_engine(model, e);
  }
  // auto: the GPU when this build has CUDA and the model fits; otherwise the CPU, saying why.
  if (cuda_device_count() > 0) {
    try {
      e.device = Device::Cuda;
      return create_engine(model, e);
    } catch (const Error& err) {
      std::fprintf(stderr, "note: %s; running on the CPU\n", err.what());
    }
  }
  e.device = Device::Cpu;
  return create_engine(model, e);
}

void add_sampling_options(CLI::App& cmd, GenerationConfig& config, bool& seed_given) {
  cmd.add_option("--max-tokens", config.max_new_tokens, "most tokens to generate")->capture_default_str();
  cmd.add_option("--temperature", config.sampler.temperature, "0 = greedy")->capture_default_str();
  cmd.add_option("--top-k", config.sampler.top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd.add_option("--top-p", config.sampler.top_p, "nucleus sampling mass (1 = off)")->capture_default_str();
  cmd.add_option("--min-p", config.sampler.min_p, "drop tokens below min-p x the top probability (0 = off)")
      ->capture_default_str();
  cmd.add_option("--repetition-penalty", config.sampler.repetition_penalty, "1 = off")->capture_default_str();
  cmd.add_option_function<uint64_t>(
      "--seed", [&config, &seed_given](const uint64_t& s) {
        config.sampler.seed = s;
        seed_given = true;
      },
      "random seed (default: a fresh one, printed on stderr)");
}

void print_generation_stats(const GenerationStats& st) {
  std::fprintf(stderr, "[%d tokens, %.1f tokens/s, first token after %.2f s, prompt %d tokens at %.0f tokens/s, stop: %s]\n",
               st.generated_tokens, st.decode_tokens_per_s, st.time_to_first_token_s, st.prompt_tokens,
               st.prefill_tokens_per_s, stop_reason_name(st.stop_reason));
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[64];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%d min %02d s", int(s) / 60, int(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%d h %02d min", int(s) / 3600, (int(s) % 3600) / 60);
  }
  return buf;
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

bool stderr_is_tty() { return ::isatty(2) != 0; }

}  // namespace aqlm::cli
