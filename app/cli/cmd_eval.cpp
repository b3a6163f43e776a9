// aqlm-cli eval MODEL --text FILE: perplexity as the AQLM and GPTQ papers measure it.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/text/tokenizer.h"

namespace aqlm::cli {

namespace {

struct EvalOptions {
  ModelOptions model;
  std::string text;
  int seqlen = 0;
  int max_windows = 0;
  bool json = false;
};

void run_eval(const EvalOptions& o) {
  const std::string text = read_text_file(o.text);
  AQLM_CHECK(!text.empty(), o.text, ": the file is empty");
  ModelOptions mo = o.model;
  if (o.seqlen > 0 && mo.context < o.seqlen) mo.context = o.seqlen;
  const auto model = load_model_or_fail(mo);
  AQLM_CHECK(model->tokenizer, model->source_path, ": no tokenizer (for a llama2.c model pass --tokenizer tok.bin)");
  auto engine = create_engine_for(*model, mo);

  PerplexityOptions options;
  options.seqlen = o.seqlen;
  options.max_windows = o.max_windows;
  const bool tty = stderr_is_tty();
  options.progress = [tty](const PerplexityProgress& p) {
    std::fprintf(stderr, "%swindow %d/%d  ppl so far %.4f  %.0f tokens/s  ETA %s%s", tty ? "\r" : "", p.windows_done,
                 p.windows_total, std::exp(p.nll_so_far), p.tokens_per_s, format_duration(p.eta_s).c_str(),
                 tty ? "   " : "\n");
    std::fflush(stderr);
  };
  const PerplexityResult r = evaluate_perplexity(*engine, *model->tokenizer, text, options);
  if (tty) std::fputc('\n', stderr);

  if (o.json) {
    nlohmann::json j = {{"model", model->source_path}, {"text", o.text},   {"seqlen", r.seqlen},
                        {"windows", r.windows},        {"tokens", r.tokens}, {"text_tokens", r.text_tokens},
                        {"nll", r.nll},                {"perplexity", r.ppl}, {"seconds", r.seconds},
                        {"device", device_name(engine->device())}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("perplexity %.4f (mean NLL %.6f nats) over %lld tokens: %d windows of %d tokens, %s\n", r.ppl, r.nll,
                static_cast<long long>(r.tokens), r.windows, r.seqlen, format_duration(r.seconds).c_str());
  }
}

}  // namespace

void register_eval(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Measure perplexity on a text file (non-overlapping windows)");
  add_model_options(*cmd, options->model, true);
  cmd->add_option("--text", options->text, "UTF-8 text file, e.g. wikitext2-test.txt")->required();
  cmd->add_option("--seqlen", options->seqlen, "window length in tokens (default: the model's context, at most 4096)");
  cmd->add_option("--max-windows", options->max_windows, "evaluate only the first K windows");
  cmd->add_flag("--json", options->json, "print JSON");
  cmd->callback([options] { run_eval(*options); });
}

}  // namespace aqlm::cli
