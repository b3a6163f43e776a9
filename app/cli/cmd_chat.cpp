// aqlm-cli chat MODEL: an interactive conversation with the model's own chat template,
// streamed tokens, and the speed after each reply. Reads turns from stdin (a terminal or a pipe).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/text/chat_template.h"
#include "core/text/tokenizer.h"

namespace aqlm::cli {

namespace {

struct ChatOptions {
  ModelOptions model;
  std::string system;
  GenerationConfig generation;
  bool seed_given = false;
};

// Generation ends at the end-of-sequence ids and at the template's end-of-turn token.
std::vector<int32_t> stop_tokens(const Model& model) {
  std::vector<int32_t> ids(model.config.eos_token_ids.begin(), model.config.eos_token_ids.end());
  const Tokenizer& tok = *model.tokenizer;
  if (tok.eos_id() >= 0) ids.push_back(tok.eos_id());
  for (const char* name : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"}) {
    if (auto id = tok.token_id(name)) ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string token_text(const Tokenizer& tok, int32_t id) {
  return id >= 0 && id < tok.vocab_size() ? tok.spec().vocab[size_t(id)] : std::string();
}

void run_chat(ChatOptions& o) {
  const auto model = load_model_or_fail(o.model);
  AQLM_CHECK(model->tokenizer, model->source_path, ": no tokenizer (for a llama2.c model pass --tokenizer tok.bin)");
  if (!o.seed_given) o.generation.sampler.seed = std::random_device{}();
  o.generation.sampler.validate();
  const Tokenizer& tok = *model->tokenizer;
  o.generation.stop_token_ids = stop_tokens(*model);

  auto engine = create_engine_for(*model, o.model);
  Generator generator(*engine);
  ChatTemplateContext context;
  context.bos_token = token_text(tok, tok.bos_id());
  context.eos_token = token_text(tok, tok.eos_id());
  context.add_generation_prompt = true;

  const bool interactive = ::isatty(0) != 0;
  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  std::fprintf(stderr, "Chatting with %s (%s, context %d tokens). /reset starts over, /system TEXT sets the system "
                       "prompt, /exit or Ctrl-D ends.\n",
               model->source_path.c_str(), device_name(engine->device()), engine->context_length());
  bool warned = false;
  std::string line;
  for (;;) {
    if (interactive) {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages.clear();
      if (!o.system.empty()) messages.push_back({"system", o.system});
      generator.reset();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      o.system = line.size() > 8 ? line.substr(8) : "";
      messages.clear();
      if (!o.system.empty()) messages.push_back({"system", o.system});
      generator.reset();
      std::fprintf(stderr, "[system prompt set; conversation cleared]\n");
      continue;
    }
    messages.push_back({"user", line});
    std::string warning;
    const std::string prompt = render_chat(model->chat_template, messages, context, &warning);
    if (!warning.empty() && !warned) {
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
      warned = true;
    }
    const std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/false, /*parse_special=*/true);
    std::string reply;
    StreamDecoder decoder(tok);
    try {
      const GenerationStats stats = generator.generate(ids, o.generation, [&](int32_t id) {
        const std::string piece = decoder.push(id);
        reply += piece;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
      const std::string rest = decoder.flush();
      reply += rest;
      std::fwrite(rest.data(), 1, rest.size(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
      print_generation_stats(stats);
      messages.push_back({"assistant", reply});
    } catch (const Error& e) {
      // The conversation survives a failed turn (e.g. a full context): say why and go on.
      std::fprintf(stderr, "error: %s (use /reset to start over)\n", e.what());
      messages.pop_back();
    }
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto options = std::make_shared<ChatOptions>();
  options->generation.max_new_tokens = 512;
  options->generation.sampler.temperature = 0.7f;
  options->generation.sampler.top_p = 0.9f;
  options->generation.sampler.repetition_penalty = 1.1f;
  CLI::App* cmd = app.add_subcommand("chat", "Talk to a model in the terminal, with its own chat template");
  add_model_options(*cmd, options->model, true);
  cmd->add_option("--system", options->system, "system prompt");
  add_sampling_options(*cmd, options->generation, options->seed_given);
  cmd->callback([options] { run_chat(*options); });
}

}  // namespace aqlm::cli
