#include "app/studio/fp_evaluator.h"

#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>

#include <chrono>

#include "app/studio/run_spec.h"
#include "core/common/paths.h"
#include "core/eval/perplexity.h"
#include "core/model/model.h"
#include "core/runtime/engine.h"
#include "core/store/run_database_sink.h"

namespace aqlm::studio {

namespace {

struct Outcome {
  std::optional<store::EvalResult> result;
  QString error;
};

Outcome evaluate(const std::string& model_path, const std::string& text_path, int seqlen, int threads) {
  Outcome outcome;
  try {
    const auto start = std::chrono::steady_clock::now();
    const std::unique_ptr<Model> model = load_model(model_path);
    AQLM_CHECK(model->tokenizer, model_path, ": no tokenizer, so its perplexity cannot be measured");
    EngineOptions options;
    options.threads = threads;
    options.context_length = seqlen;
    const std::unique_ptr<Engine> engine = create_engine(*model, options);
    PerplexityOptions ppl;
    ppl.seqlen = seqlen;
    const PerplexityResult r = evaluate_perplexity(*engine, *model->tokenizer, read_text_file(text_path), ppl);
    store::EvalResult result;
    result.dataset = store::evaluation_dataset(text_path);
    result.seqlen = r.seqlen;
    result.windows = r.windows;
    result.perplexity = r.ppl;
    result.nll = r.nll;
    result.tokens = r.tokens;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    outcome.result = result;
  } catch (const std::exception& error) {
    outcome.error = QString::fromStdString(error.what());
  }
  return outcome;
}

}  // namespace

FpEvaluator::FpEvaluator(StudioContext& context, QObject* parent) : QObject(parent), context_(context) {}

bool FpEvaluator::evaluateReferenceFor(store::Id run_id) {
  store::RunDatabase& db = context_.database();
  const std::optional<store::Run> run = db.find_run(run_id);
  if (!run) return false;
  const std::optional<store::Model> model = db.find_model(run->model_id);
  if (!model) return false;
  RunSpec spec;
  try {
    spec = RunSpec::from_json(run->settings);
  } catch (const Error&) {
    return false;  // not a run the studio started
  }
  const std::string text = spec.pipeline.eval_text;
  if (text.empty()) return false;
  const int seqlen = int(spec.pipeline.eval_seqlen > 0 ? spec.pipeline.eval_seqlen : spec.pipeline.seqlen);
  const std::string dataset = store::evaluation_dataset(text);
  for (const store::Evaluation& e : db.evaluations_of_model(model->id))
    if (!e.run_id && e.dataset == dataset && e.seqlen == seqlen) return false;
  const QString key = QStringLiteral("%1|%2|%3").arg(model->id).arg(QString::fromStdString(dataset)).arg(seqlen);
  if (pending_.contains(key)) return false;
  pending_.insert(key);
  context_.info(tr("measuring the fp model's perplexity on %1 (%2-token windows) for comparison")
                    .arg(QString::fromStdString(text))
                    .arg(seqlen));
  auto* watcher = new QFutureWatcher<Outcome>(this);
  const store::Id model_id = model->id;
  connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher, key, model_id] {
    const Outcome outcome = watcher->result();
    watcher->deleteLater();
    pending_.remove(key);
    if (outcome.result) {
      context_.database().add_model_evaluation(model_id, *outcome.result);
      context_.info(tr("fp model perplexity: %1").arg(outcome.result->perplexity, 0, 'f', 4));
      context_.notifyDatabaseChanged();
    } else {
      context_.warn(tr("the fp model's perplexity could not be measured: %1").arg(outcome.error));
    }
    Q_EMIT finished(model_id);
  });
  watcher->setFuture(QtConcurrent::run(evaluate, model->path.string(), text, seqlen, context_.settings().threads));
  return true;
}

}  // namespace aqlm::studio
