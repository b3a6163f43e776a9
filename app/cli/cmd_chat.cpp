// aqlm-cli chat MODEL: an interactive conversation with the model's own chat template,
// streamed tokens, and the speed after each reply. Reads turns from stdin (a terminal or a pipe).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <random>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/runtime/chat_session.h"

namespace aqlm::cli {

namespace {

struct ChatOptions {
  ModelOptions model;
  std::string system;
  GenerationConfig generation;
  bool seed_given = false;
};

void run_chat(ChatOptions& o) {
  const auto model = load_model_or_fail(o.model);
  if (!o.seed_given) o.generation.sampler.seed = std::random_device{}();
  o.generation.sampler.validate();
  auto engine = create_engine_for(*model, o.model);
  ChatSession session(*model, *engine);
  session.set_system_prompt(o.system);

  const bool interactive = ::isatty(0) != 0;
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
      session.clear();
      std::fprintf(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      session.set_system_prompt(line.size() > 8 ? line.substr(8) : "");
      session.clear();
      std::fprintf(stderr, "[system prompt set; conversation cleared]\n");
      continue;
    }
    try {
      const ChatReply reply = session.send(line, o.generation, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
      std::fputc('\n', stdout);
      std::fflush(stdout);
      if (!session.template_warning().empty() && !warned) {
        std::fprintf(stderr, "warning: %s\n", session.template_warning().c_str());
        warned = true;
      }
      print_generation_stats(reply.stats);
    } catch (const Error& e) {
      // The conversation survives a failed turn (e.g. a full context): say why and go on.
      std::fprintf(stderr, "error: %s (use /reset to start over)\n", e.what());
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
