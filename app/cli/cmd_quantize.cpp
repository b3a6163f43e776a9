// aqlm-cli quantize MODEL --out DIR: the block-by-block pipeline (AQLM, GPTQ or RTN) as a Job,
// with a progress line on stderr, an optional JSON-lines log for the studio, an optional record
// in the run database (--db, so the run appears in the studio), and Ctrl-C that stops at the
// next step boundary leaving a checkpoint that --resume continues.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "core/common/error.h"
#include "core/common/thread_pool.h"
#include "core/jobs/cancelled.h"
#include "core/jobs/job.h"
#include "core/quant/pipeline_output.h"

#ifdef AQLM_HAVE_STORE
#include "core/model/model.h"
#include "core/store/model_entry.h"
#include "core/store/run_database.h"
#include "core/store/run_database_sink.h"
#endif

namespace aqlm::cli {

namespace {

struct QuantizeOptions {
  PipelineSettings settings;
  std::string config = "2x8g8";
  std::string method = "aqlm";
  std::string device = "cpu";
  std::string log_json;
  int threads = 0;
  bool json = false;
  bool record = false;  // --db given (with or without a file)
  std::string db;       // empty: RunDatabase::default_path()
  int64_t run_id = 0;   // --run-id: an existing run to record into (the studio creates it)
};

Job* g_running_job = nullptr;

extern "C" void on_sigint(int) {
  if (g_running_job) g_running_job->cancel();
  static const char message[] = "\naqlm-cli: stopping at the next step (Ctrl-C again to kill)\n";
  [[maybe_unused]] const ssize_t n = ::write(2, message, sizeof message - 1);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

// The progress line: rewritten in place on a terminal (at most 5 times a second), and one line
// per finished layer and block otherwise (logs, the studio's child-process pipe).
class ProgressPrinter : public ProgressSink {
 public:
  void emit(const ProgressEvent& e) override {
    switch (e.kind) {
      case EventKind::Bits:
        line(str("predicted: ", fixed(e.data.at("bits_per_parameter").get<double>(), 4), " bits per parameter over ",
                 e.data.at("quantized_parameters").get<int64_t>(), " quantized parameters (", e.data.at("method").get<std::string>(),
                 " ", e.data.at("config").get<std::string>(), "), weights ",
                 format_bytes(e.data.at("weight_bytes").get<double>())));
        break;
      case EventKind::Calibration:
        line(str("calibration: ", e.data.at("train_windows").get<int64_t>(), " windows + ",
                 e.data.at("heldout_windows").get<int64_t>(), " held-out of ", e.data.at("seqlen").get<int64_t>(),
                 " tokens from ", e.data.at("text_tokens").get<int64_t>(), " tokens of text"));
        break;
      case EventKind::Message: line(e.message); break;
      case EventKind::LayerStep:
      case EventKind::FinetuneStep:
        if (e.phase == "global" && e.heldout_loss)  // one line per epoch of global fine-tuning
          line(str("global fine-tuning epoch ", e.epoch + 1, "  step ", e.step, "/", e.steps, "  KL ", sci(e.loss.value_or(0)),
                   "  held-out KL ", sci(*e.heldout_loss), "  ETA ", eta(e)));
        else if (tty_)
          status(e);
        break;
      case EventKind::LayerFinished:
        line(str("block ", e.block + 1, "/", e.blocks, "  ", e.layer, "  rel.err ", sci(e.loss.value_or(0)), "  ",
                 fixed(e.data.value("bits", 0.0), 3), " bits  ", format_duration(e.data.value("seconds", 0.0)),
                 e.data.value("restored", false) ? "  (from the checkpoint)" : "", "  ETA ", eta(e)));
        break;
      case EventKind::BlockFinished: {
        std::string tuned;
        if (e.data.contains("finetune_heldout_after"))
          tuned = str("  fine-tuned held-out ", sci(e.data["finetune_heldout_before"].get<double>()), " -> ",
                      sci(e.data["finetune_heldout_after"].get<double>()));
        line(str("block ", e.block + 1, "/", e.blocks, " done: output rel.mse ", sci(e.loss.value_or(0)),
                 e.heldout_loss ? str(" (held-out ", sci(*e.heldout_loss), ")") : std::string(), tuned, "  ETA ", eta(e)));
        break;
      }
      case EventKind::Evaluation:
        line(str("perplexity ", fixed(e.data.at("perplexity").get<double>(), 4), " on ", e.data.at("text").get<std::string>(),
                 " (", e.data.at("windows").get<int64_t>(), " windows of ", e.data.at("seqlen").get<int64_t>(), " tokens)"));
        break;
      case EventKind::OutputWritten:
        line(str("wrote ", e.data.at("path").get<std::string>(), " (", format_bytes(e.data.at("bytes").get<double>()),
                 "); measured ", fixed(e.data.at("bits_per_parameter").get<double>(), 4), " bits per parameter"));
        break;
      default: break;
    }
  }

 private:
  static std::string sci(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3e", v);
    return b;
  }
  static std::string fixed(double v, int digits) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return b;
  }
  static std::string eta(const ProgressEvent& e) { return e.eta_s ? format_duration(*e.eta_s) : "?"; }

  void line(const std::string& text) {
    std::fprintf(stderr, "%s%s\n", status_shown_ ? "\r\033[K" : "", text.c_str());
    std::fflush(stderr);
    status_shown_ = false;
  }
  void status(const ProgressEvent& e) {
    const auto now = std::chrono::steady_clock::now();
    if (status_shown_ && now - last_status_ < std::chrono::milliseconds(200)) return;
    last_status_ = now;
    const std::string what = e.kind == EventKind::FinetuneStep ? std::string("fine-tuning") : e.layer + " " + e.phase;
    const std::string where = e.block >= 0 ? str("block ", e.block + 1, "/", e.blocks, "  ") : std::string("global ");
    std::string text = str(where, what, " epoch ", e.epoch + 1, " step ", e.step, "/",
                           e.steps, "  loss ", sci(e.loss.value_or(0)), "  ETA ", eta(e));
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    status_shown_ = true;
  }

  bool tty_ = stderr_is_tty();
  bool status_shown_ = false;
  std::chrono::steady_clock::time_point last_status_{};
};

#ifdef AQLM_HAVE_STORE
// The run --db records into: --run-id's; else, with --resume, the newest unfinished run writing
// the same folder; else a new run (and a library entry for the model when it has none). Its
// settings have the shape the studio stores, so the studio can resume it and evaluate its model.
store::Id database_run(store::RunDatabase& db, const QuantizeOptions& o) {
  const PipelineSettings& s = o.settings;
  const std::filesystem::path out = std::filesystem::absolute(s.out_dir).lexically_normal();
  if (o.run_id > 0) {
    const std::optional<store::Run> run = db.find_run(o.run_id);
    AQLM_CHECK(run, db.file().string(), ": run ", o.run_id, " does not exist (--run-id)");
    AQLM_CHECK(std::filesystem::absolute(run->output_dir).lexically_normal() == out, db.file().string(), ": run ", o.run_id,
               " writes ", run->output_dir.string(), ", not ", out.string(), " (--run-id)");
    return o.run_id;
  }
  if (s.resume) {
    std::optional<store::Run> newest;
    for (const store::RunStatus status : {store::RunStatus::Paused, store::RunStatus::Running, store::RunStatus::Failed,
                                          store::RunStatus::Cancelled, store::RunStatus::Queued})
      for (store::Run& run : db.runs_with_status(status))
        if (std::filesystem::absolute(run.output_dir).lexically_normal() == out && (!newest || run.id > newest->id))
          newest = std::move(run);
    if (newest) return newest->id;
  }
  const std::filesystem::path model_path = std::filesystem::absolute(s.model).lexically_normal();
  std::optional<store::Model> model = db.find_model_by_path(model_path);
  std::optional<double> predicted_bits;
  store::Id model_id = model ? model->id : 0;
  if (!model) {  // loaded once here to describe it; the job loads it again
    const std::unique_ptr<Model> loaded = load_model(s.model, LoadOptions{s.tokenizer, false});
    model_id = db.add_model(store::describe_model(model_path, *loaded));
    predicted_bits = plan_bits(loaded->config, s).bits_per_parameter;
  }
  // Absolute paths, so the studio can resume the run and find its texts from any folder.
  PipelineSettings recorded = s;
  const auto absolute = [](std::string& path) {
    if (!path.empty()) path = std::filesystem::absolute(path).lexically_normal().string();
  };
  for (std::string* path : {&recorded.model, &recorded.out_dir, &recorded.tokenizer, &recorded.checkpoint_dir, &recorded.eval_text})
    absolute(*path);
  for (std::string& file : recorded.calibration_files) absolute(file);
  store::RunRequest request;
  request.model_id = model_id;
  request.method = store::parse_quant_method(pipeline_method_name(s.method));
  request.config = method_config_name(s);
  request.settings = {{"pipeline", recorded.to_json()}, {"device", o.device}, {"threads", o.threads}};
  request.output_dir = out;
  request.checkpoint_dir = s.resolved_checkpoint_dir();
  request.bits_predicted = predicted_bits;
  return db.create_run(request);
}
#endif

nlohmann::json result_json(const PipelineResult& r) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"block", l.block}, {"layer", l.layer}, {"relative_error", l.relative_error}, {"bits", l.bits},
                      {"seconds", l.seconds}});
  nlohmann::json j{{"out_dir", r.out_dir},
                   {"method", r.method},
                   {"config", r.config},
                   {"quantized_parameters", r.quantized_parameters},
                   {"bits_per_parameter_predicted", r.predicted_bits},
                   {"bits_per_parameter_measured", r.measured_bits},
                   {"weight_bytes_predicted", r.predicted_weight_bytes},
                   {"output_bytes", r.output_bytes},
                   {"resumed", r.resumed},
                   {"seconds", r.seconds},
                   {"layers", layers}};
  if (r.global_finetune)
    j["global_finetune"] = {{"heldout_kl_before", r.global_finetune->heldout_kl_before},
                            {"heldout_kl_after", r.global_finetune->heldout_kl_after},
                            {"steps", r.global_finetune->steps},
                            {"seconds", r.global_finetune->seconds}};
  if (r.evaluation)
    j["evaluation"] = {{"text", r.evaluation->text}, {"seqlen", r.evaluation->seqlen}, {"perplexity", r.evaluation->perplexity},
                       {"nll", r.evaluation->nll}};
  return j;
}

void run_quantize(QuantizeOptions& o) {
  if (o.device == "auto") {  // the GPU when one works, else the CPU with a note
    const std::string why = cuda_quantization_unavailable_reason();
    if (!why.empty()) std::fprintf(stderr, "aqlm-cli: quantizing on the CPU (%s)\n", why.c_str());
    o.device = why.empty() ? "cuda" : "cpu";
  }
  o.settings.device = parse_compute_device(o.device);
  if (o.threads > 0) ThreadPool::set_default_threads(o.threads);
  PipelineSettings& s = o.settings;
  s.model = resolve_model_path(s.model);
  s.method = parse_pipeline_method(o.method);
  s.aqlm = AqlmConfig::parse(o.config);

  Job job(s);
  job.add_sink(std::make_shared<ProgressPrinter>());
  if (!o.log_json.empty()) job.add_sink(std::make_shared<JsonLinesSink>(o.log_json));
#ifdef AQLM_HAVE_STORE
  std::optional<store::RunDatabase> db;  // outlives the job and its sink
  if (o.record) {
    db.emplace(store::RunDatabase::open(o.db.empty() ? store::RunDatabase::default_path() : std::filesystem::path(o.db)));
    const store::Id run_id = database_run(*db, o);
    std::fprintf(stderr, "aqlm-cli: recording run %lld in %s\n", static_cast<long long>(run_id), db->file().c_str());
    job.add_sink(std::make_shared<store::RunDatabaseSink>(*db, run_id, method_config_name(s)));
  }
#endif
  g_running_job = &job;
  std::signal(SIGINT, on_sigint);
  // Past a file-size limit a write should fail (and the half-written output be removed)
  // rather than the process die where it stands.
  std::signal(SIGXFSZ, SIG_IGN);
  PipelineResult r;
  try {
    r = job.run();
  } catch (const Cancelled&) {
    std::signal(SIGINT, SIG_DFL);
    g_running_job = nullptr;
    std::fprintf(stderr, "aqlm-cli: stopped; the checkpoint is in %s: run the same command with --resume to continue\n",
                 job.checkpoint_dir().c_str());
    throw CLI::RuntimeError(130);
  } catch (...) {
    std::signal(SIGINT, SIG_DFL);
    g_running_job = nullptr;
    throw;
  }
  std::signal(SIGINT, SIG_DFL);
  g_running_job = nullptr;
  if (o.json) {
    std::printf("%s\n", result_json(r).dump(2).c_str());
  } else {
    std::printf("%s: %s %s, %.4f bits per parameter (predicted %.4f), %s, in %s%s\n", r.out_dir.c_str(), r.method.c_str(),
                r.config.c_str(), r.measured_bits, r.predicted_bits, format_bytes(double(r.output_bytes)).c_str(),
                format_duration(r.seconds).c_str(),
                r.evaluation ? str(", perplexity ", r.evaluation->perplexity).c_str() : "");
  }
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  PipelineSettings& s = o->settings;
  CLI::App* cmd = app.add_subcommand("quantize", "Compress a model block by block with AQLM, GPTQ or RTN");
  cmd->add_option("MODEL", s.model, "Hugging Face folder, .gguf file, llama2.c .bin, or 'default'")->required();
  cmd->add_option("--tokenizer", s.tokenizer, "llama2.c tokenizer .bin (default: one found beside the model)");
  cmd->add_option("--out", s.out_dir, "output folder (written elsewhere and renamed into place when complete)")->required();
  cmd->add_option("--method", o->method, "aqlm, gptq or rtn")->capture_default_str();
  cmd->add_option("--config", o->config, "AQLM MxBgG: M codebooks of 2^B codewords over groups of G weights")
      ->capture_default_str();
  cmd->add_option("--beam", s.beam, "AQLM beam size (0: 8 for B < 12, else 1)")->capture_default_str();
  cmd->add_option("--layer-epochs", s.layer_max_epochs, "AQLM: most Adam + beam-search rounds per layer")
      ->capture_default_str();
  cmd->add_option("--layer-tolerance", s.layer_tolerance,
                  "AQLM: stop a layer when a round improves its relative error by less than this")
      ->capture_default_str();
  cmd->add_option("--layer-steps", s.layer_adam_steps, "AQLM: Adam steps per round")->capture_default_str();
  cmd->add_option("--bits", s.bits, "GPTQ/RTN bits per weight")->capture_default_str();
  cmd->add_option("--group-size", s.group_size, "GPTQ/RTN weights per scale and zero point (0: one per row)")
      ->capture_default_str();
  cmd->add_option("--calib", s.calibration_files,
                  "calibration text: plain text (documents separated by blank lines) or .jsonl with a \"text\" field; "
                  "repeat for several (default: c4-validation-2k.txt)");
  cmd->add_option("--nsamples", s.nsamples, "calibration windows")->capture_default_str();
  cmd->add_option("--heldout", s.heldout, "held-out windows for fine-tuning's early stop (default: nsamples/8)");
  cmd->add_option("--seqlen", s.seqlen, "tokens per calibration window")->capture_default_str();
  cmd->add_flag("--finetune,!--no-finetune", s.finetune, "AQLM block fine-tuning (default on)");
  cmd->add_option("--epochs", s.finetune_epochs, "most block fine-tuning epochs")->capture_default_str();
  cmd->add_option("--finetune-lr", s.finetune_learning_rate, "block fine-tuning learning rate")->capture_default_str();
  cmd->add_option("--finetune-batch", s.finetune_batch, "windows per block fine-tuning step")->capture_default_str();
  cmd->add_option("--global-epochs", s.global_finetune_epochs,
                  "AQLM: epochs of global fine-tuning against the source model after the last block (0: off)")
      ->capture_default_str();
  cmd->add_option("--global-lr", s.global_finetune_learning_rate, "global fine-tuning learning rate")->capture_default_str();
  cmd->add_option("--global-batch", s.global_finetune_batch, "windows per global fine-tuning step")->capture_default_str();
  cmd->add_option("--device", o->device,
                  "cpu, cuda (block passes, AQLM layers and fine-tuning on one GPU) or auto (cuda when a GPU works)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)");
  cmd->add_option("--seed", s.seed, "seed of every random choice (windows, initialisation, order)")->capture_default_str();
  cmd->add_option("--max-ram", s.max_ram_gb, "GB of activations kept in memory; the rest goes to disk (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--checkpoint", s.checkpoint_dir, "checkpoint folder (default: OUT.checkpoint)");
  cmd->add_flag("--resume", s.resume, "continue from the checkpoint of a stopped run");
  cmd->add_flag("--overwrite", s.overwrite, "replace an existing output folder and an old checkpoint");
  cmd->add_flag("--keep-checkpoint", s.keep_checkpoint, "keep the checkpoint folder after success");
  cmd->add_option("--eval-text", s.eval_text, "measure the result's perplexity on this text");
  cmd->add_option("--eval-seqlen", s.eval_seqlen, "evaluation window (default: --seqlen)");
  cmd->add_option("--log-json", o->log_json, "write every progress event to FILE as JSON lines");
#ifdef AQLM_HAVE_STORE
  CLI::Option* db = cmd->add_option("--db", o->db,
                                    "record the run in the studio's run database, so it appears in the studio: FILE, or "
                                    "without a value " + store::RunDatabase::default_path().string() +
                                        " (write --db=FILE before MODEL)")
                        ->expected(0, 1);
  cmd->add_option("--run-id", o->run_id, "with --db: record into this existing run (the studio passes the run it created)")
      ->needs(db);
#endif
  cmd->add_flag("--json", o->json, "print the result as JSON");
#ifdef AQLM_HAVE_STORE
  cmd->callback([o, db] {
    o->record = db->count() > 0;
    run_quantize(*o);
  });
#else
  cmd->callback([o] { run_quantize(*o); });
#endif
}

}  // namespace aqlm::cli
