// aqlm-cli generate MODEL --prompt TEXT: a plain text continuation, streamed to stdout.
#include <cstdio>
#include <random>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/text/tokenizer.h"

namespace aqlm::cli {

namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt;
  GenerationConfig generation;
  bool seed_given = false;
  bool echo = true;
};

void run_generate(GenerateOptions& o) {
  const auto model = load_model_or_fail(o.model);
  AQLM_CHECK(model->tokenizer, model->source_path, ": no tokenizer (for a llama2.c model pass --tokenizer tok.bin)");
  if (!o.seed_given) o.generation.sampler.seed = std::random_device{}();
  o.generation.sampler.validate();
  if (!o.seed_given && !o.generation.sampler.greedy())
    std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(o.generation.sampler.seed));

  const Tokenizer& tok = *model->tokenizer;
  std::vector<int32_t> ids = tok.encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  if (ids.empty() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());  // an empty prompt starts from BOS
  AQLM_CHECK(!ids.empty(), "the prompt is empty and the tokenizer has no BOS token to start from");

  auto engine = create_engine_for(*model, o.model);
  Generator generator(*engine);
  if (o.echo) {
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  // After an echoed prompt the continuation's first space is real; without one, decode as HF does.
  StreamDecoder decoder(tok, /*skip_special=*/true, /*continues_text=*/o.echo && !o.prompt.empty());
  const GenerationStats stats = generator.generate(ids, o.generation, [&](int32_t id) {
    const std::string piece = decoder.push(id);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  const std::string rest = decoder.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  print_generation_stats(stats);
}

}  // namespace

void register_generate(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  options->generation.max_new_tokens = 128;
  options->generation.sampler.temperature = 0.7f;
  options->generation.sampler.top_p = 0.9f;
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt (plain text, no chat template)");
  add_model_options(*cmd, options->model, true);
  cmd->add_option("--prompt,-p", options->prompt, "the text to continue (empty: start from BOS)");
  add_sampling_options(*cmd, options->generation, options->seed_given);
  cmd->add_flag("!--no-echo", options->echo, "do not print the prompt before the continuation");
  cmd->callback([options] { run_generate(*options); });
}

}  // namespace aqlm::cli
