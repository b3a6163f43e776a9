// aqlm-cli finetune AQLM_FOLDER --teacher MODEL --out DIR: global fine-tuning (the P step of
// PV-Tuning, core/quant/global_finetuner.h) of a compressed model against the model it was
// compressed from, written as a new AQLM folder. Ctrl-C stops after the current step and
// writes nothing.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/format/aqlm_writer.h"
#include "core/jobs/cancelled.h"
#include "core/quant/calibration.h"
#include "core/quant/global_finetuner.h"
#include "core/text/tokenizer.h"

namespace aqlm::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct FinetuneCliOptions {
  std::string student, teacher, out, log_json;
  std::vector<std::string> calib;
  int64_t nsamples = 64, heldout = 8, seqlen = 512;
  GlobalFinetuneOptions tuning;
  int threads = 0;
  bool overwrite = false, json_output = false;
};

std::atomic<bool> g_stop{false};
void on_sigint(int) { g_stop = true; }

// MemAvailable of /proc/meminfo in bytes; 0 when it cannot be read.
int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  long long kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return int64_t(kib) * 1024;
  return 0;
}

json settings_json(const FinetuneCliOptions& o, const std::vector<std::string>& calib) {
  const GlobalFinetuneOptions& t = o.tuning;
  return {{"calibration_files", calib},  {"nsamples", o.nsamples},           {"heldout", o.heldout},
          {"seqlen", o.seqlen},          {"epochs", t.max_epochs},          {"learning_rate", t.adam.learning_rate},
          {"batch", t.batch_windows},    {"micro_batch", t.micro_batch_windows}, {"patience", t.patience},          {"seed", t.seed},
          {"train_codebooks", t.train_codebooks}, {"train_scales", t.train_scales}, {"train_norms", t.train_norms}};
}

void run_finetune(FinetuneCliOptions& o) {
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
  fs::path out = fs::path(o.out).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  // Refused before any work: the run may take hours.
  AQLM_CHECK(!fs::exists(out) || o.overwrite, out.string(), ": already exists; choose another output folder or pass --overwrite");
  AQLM_CHECK(o.nsamples >= 1 && o.heldout >= 0 && o.seqlen >= 2, "finetune: --nsamples ", o.nsamples, ", --heldout ",
             o.heldout, ", --seqlen ", o.seqlen, " (need at least 1 window, no negative held-out count, 2 tokens)");
  [[maybe_unused]] const GlobalFinetuner options_check(o.tuning);

  ModelOptions student_options, teacher_options;
  student_options.model = o.student;
  teacher_options.model = o.teacher;
  const auto student = load_model_or_fail(student_options);
  const auto teacher = load_model_or_fail(teacher_options);
  check_teacher_fits(teacher->config, student->config);
  AQLM_CHECK(student->tokenizer, student->source_path, ": no tokenizer files");
  const int64_t need = global_finetune_memory_bytes(student->config, o.nsamples + o.heldout, o.seqlen,
                                                    o.tuning.micro_batch_windows);
  const int64_t available = available_memory_bytes();
  AQLM_CHECK(available <= 0 || need <= available, "finetune: needs about ", format_bytes(double(need)), " of memory but ",
             format_bytes(double(available)), " is available (fewer --nsamples or a shorter --seqlen lower it a little; "
             "most of it is the model's weights and their gradients)");
  FinetuneModel tuned = finetune_model_of(*student);

  const std::vector<std::string> calib = o.calib.empty() ? std::vector<std::string>{default_calibration_text_path().string()} : o.calib;
  CalibrationOptions co;
  co.train_windows = o.nsamples;
  co.heldout_windows = o.heldout;
  co.seqlen = o.seqlen;
  co.seed = o.tuning.seed;
  const CalibrationSet set = make_calibration_set(*student->tokenizer, calib, co);
  std::fprintf(stderr, "calibration: %lld windows + %lld held-out of %lld tokens\n", static_cast<long long>(set.train_windows),
               static_cast<long long>(set.heldout_windows), static_cast<long long>(set.seqlen));

  std::signal(SIGINT, on_sigint);
  o.tuning.cancel = &g_stop;
  ThreadPool& pool = ThreadPool::global();
  std::fprintf(stderr, "teacher: running %s over the windows\n", teacher->source_path.c_str());
  TeacherOutputs train_teacher, heldout_teacher;
  try {
    train_teacher = run_teacher(*teacher, set.train, set.train_windows, set.seqlen, pool, &g_stop);
    heldout_teacher = run_teacher(*teacher, set.heldout, set.heldout_windows, set.seqlen, pool, &g_stop);
  } catch (const Cancelled&) {
    std::fprintf(stderr, "aqlm-cli: stopped; nothing was written\n");
    throw CLI::RuntimeError(130);
  }

  std::ofstream log;
  if (!o.log_json.empty()) {
    log.open(o.log_json, std::ios::trunc);
    AQLM_CHECK(log.good(), o.log_json, ": cannot write the log");
  }
  const bool tty = stderr_is_tty();
  GlobalFinetuner finetuner(o.tuning);
  const GlobalFinetuneResult r = finetuner.run(
      tuned, set.train, train_teacher, set.heldout, heldout_teacher, [&](const GlobalFinetuneProgress& p) {
        const int64_t total = p.steps_per_epoch * o.tuning.max_epochs;
        const double eta = p.seconds / double(p.step) * double(total - p.step);
        std::fprintf(stderr, "%sepoch %d/%d  step %lld/%lld  KL %.5f%s  ETA %s%s", tty ? "\r" : "", p.epoch + 1,
                     o.tuning.max_epochs, static_cast<long long>(p.step), static_cast<long long>(total), p.train_kl,
                     p.heldout_kl ? str("  held-out KL ", *p.heldout_kl, " (best ", p.best_heldout_kl, ")").c_str() : "",
                     format_duration(eta).c_str(), tty && !p.heldout_kl ? "   " : "\n");
        std::fflush(stderr);
        if (log.is_open()) {
          json j{{"event", "global_finetune_step"}, {"epoch", p.epoch}, {"step", p.step},
                 {"steps", total},                  {"kl", p.train_kl},  {"t", p.seconds}};
          if (p.heldout_kl) j["heldout_kl"] = *p.heldout_kl;
          log << j.dump() << "\n" << std::flush;
        }
      });
  std::signal(SIGINT, SIG_DFL);
  if (r.cancelled) {
    std::fprintf(stderr, "aqlm-cli: stopped after %lld steps; nothing was written\n", static_cast<long long>(r.steps));
    throw CLI::RuntimeError(130);
  }

  // The compressed model's own record, with this step added; its perplexity (if any) was
  // measured before fine-tuning, so it moves under "before".
  json studio = json::object();
  const fs::path record = fs::path(student->source_path) / kAqlmStudioJson;
  if (fs::exists(record)) {
    std::ifstream in(record);
    studio = json::parse(in, nullptr, false);
    if (!studio.is_object()) studio = json::object();
  }
  json before = json::object();
  if (studio.contains("results") && studio["results"].contains("evaluation")) {
    before = studio["results"]["evaluation"];
    studio["results"].erase("evaluation");
  }
  const json results{{"heldout_kl_before", r.initial_heldout_kl}, {"heldout_kl_after", r.best_heldout_kl},
                     {"best_step", r.best_step},                 {"steps", r.steps},
                     {"epochs_run", r.epochs_run},               {"stopped_early", r.stopped_early},
                     {"seconds", r.seconds}};
  studio["global_finetune"] = {{"student", student->source_path}, {"teacher", teacher->source_path},
                               {"settings", settings_json(o, calib)}, {"results", results},
                               {"evaluation_before", before}};
  store_finetuned(tuned, *student);
  FolderWriteOptions wo;
  wo.overwrite = o.overwrite;
  wo.studio = studio;
  save_aqlm_folder(*student, std::map<std::string, QuantizedLayer>{}, out.string(), wo);  // every AQLM projection as the model now holds it

  if (o.json_output) {
    json j = results;
    j["out_dir"] = out.string();
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s: held-out KL %.5f -> %.5f after %lld steps (best at step %lld), in %s\n", out.string().c_str(),
                r.initial_heldout_kl, r.best_heldout_kl, static_cast<long long>(r.steps),
                static_cast<long long>(r.best_step), format_duration(r.seconds).c_str());
  }
}

}  // namespace

void register_finetune(CLI::App& app) {
  auto o = std::make_shared<FinetuneCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "finetune", "global fine-tuning of an AQLM model against the model it came from (KL on calibration text)");
  cmd->add_option("AQLM_MODEL", o->student, "AQLM folder written by quantize")->required();
  cmd->add_option("--teacher", o->teacher, "the original model (folder, .gguf, .bin or 'default')")->required();
  cmd->add_option("--out", o->out, "output AQLM folder (written elsewhere and renamed into place)")->required();
  cmd->add_option("--calib", o->calib, "calibration text or .jsonl files (default: c4-validation-2k.txt)");
  cmd->add_option("--nsamples", o->nsamples, "training windows")->capture_default_str();
  cmd->add_option("--heldout", o->heldout, "held-out windows for the early stop")->capture_default_str();
  cmd->add_option("--seqlen", o->seqlen, "tokens per window")->capture_default_str();
  cmd->add_option("--epochs", o->tuning.max_epochs, "most epochs")->capture_default_str();
  cmd->add_option("--lr", o->tuning.adam.learning_rate, "Adam learning rate")->capture_default_str();
  cmd->add_option("--batch", o->tuning.batch_windows, "windows per Adam step")->capture_default_str();
  cmd->add_option("--micro-batch", o->tuning.micro_batch_windows,
                  "windows per forward/backward pass: memory grows with it; products are split in 128-token chunks, "
                  "so with many cores 4 windows of 512 tokens keep 16 of them busy")
      ->capture_default_str();
  cmd->add_option("--patience", o->tuning.patience, "epochs without held-out improvement before stopping")
      ->capture_default_str();
  cmd->add_option("--seed", o->tuning.seed, "seed of the windows and their order")->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)");
  cmd->add_option("--log-json", o->log_json, "write every step to FILE as JSON lines");
  cmd->add_flag("--overwrite", o->overwrite, "replace an existing output folder");
  cmd->add_flag("--json", o->json_output, "print the result as JSON");
  cmd->callback([o] { run_finetune(*o); });
}

}  // namespace aqlm::cli
