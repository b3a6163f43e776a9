#pragma once
// What every aqlm-cli subcommand shares: resolving MODEL, loading it with a clear message,
// options for the engine, and progress lines on stderr.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/runtime/generator.h"

namespace aqlm::cli {

// Options of the model a subcommand runs.
struct ModelOptions {
  std::string model;           // folder, .gguf, .bin, or "default"
  std::string tokenizer;       // llama2.c tokenizer .bin
  std::string device = "auto";  // auto | cpu | cuda
  int threads = 0;
  int context = 0;             // KV cache capacity; 0: the model's, at most 4096
};

// Adds MODEL (positional) and --tokenizer to `cmd`; with_engine adds --device, --threads, --ctx.
void add_model_options(CLI::App& cmd, ModelOptions& options, bool with_engine);

// Sampling options of generate and chat; `default_temperature` differs per command.
void add_sampling_options(CLI::App& cmd, GenerationConfig& config, bool& seed_given);
// Prints the generation's speed on stderr: "[42 tokens, 31.2 tokens/s, first token after 0.21 s]".
void print_generation_stats(const GenerationStats& stats);

// "default" -> the default model in the models cache (with a hint to run setup if absent).
std::string resolve_model_path(const std::string& model);

std::unique_ptr<Model> load_model_or_fail(const ModelOptions& options);
std::unique_ptr<Engine> create_engine_for(const Model& model, const ModelOptions& options);

// "12.3 s", "4 min 05 s", "1 h 02 min"
std::string format_duration(double seconds);
// "98.4 MB"
std::string format_bytes(double bytes);

// True when stderr is a terminal (progress lines rewrite themselves with \r).
bool stderr_is_tty();

// Each subcommand registers itself on the app.
void register_info(CLI::App& app);
void register_generate(CLI::App& app);
void register_chat(CLI::App& app);
void register_eval(CLI::App& app);
void register_convert(CLI::App& app);
void register_quantize(CLI::App& app);
void register_quantize_layer(CLI::App& app);
void register_finetune(CLI::App& app);

}  // namespace aqlm::cli
