// RunDatabase: per-layer metrics, step losses, evaluations (and the compare plot), artifacts.
#include <algorithm>
#include <cmath>

#include "core/common/error.h"
#include "core/store/rows.h"
#include "core/store/run_database.h"
#include "core/store/sqlite.h"

namespace aqlm::store {
using rows::to_ms;

// ---------------------------------------------------------------- layer metrics

void RunDatabase::record_layer_metric(Id run_id, const LayerMetric& metric) {
  const std::string doing = str("recording run ", run_id, " layer ", metric.block, ".", metric.layer);
  sql::Transaction transaction(*connection_, doing);
  require_row("runs", "run", run_id);
  auto query = connection_->query(
      "INSERT INTO layer_metrics (run_id, block, layer, config, loss, relative_error, seconds, bits) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (run_id, block, layer) DO UPDATE SET "
      "config = excluded.config, loss = excluded.loss, relative_error = excluded.relative_error, "
      "seconds = excluded.seconds, bits = excluded.bits");
  query->bind(1, run_id).bind(2, metric.block).bind(3, metric.layer).bind(4, metric.config);
  query->bind(5, metric.loss).bind(6, metric.relative_error).bind(7, metric.seconds).bind(8, metric.bits);
  query->run(doing);
  transaction.commit();
}

std::vector<LayerMetric> RunDatabase::layer_table(Id run_id) {
  auto query = connection_->query(
      "SELECT block, layer, config, loss, relative_error, seconds, bits FROM layer_metrics "
      "WHERE run_id = ?1 ORDER BY block, id");
  query->bind(1, run_id);
  std::vector<LayerMetric> table;
  while (query->step(str("reading the layer table of run ", run_id))) {
    table.push_back(LayerMetric{int(query->integer(0)), query->text(1), query->text(2), query->real(3),
                                query->real(4), query->real(5), query->real(6)});
  }
  return table;
}

// ---------------------------------------------------------------- step losses

void RunDatabase::add_step_losses(Id run_id, std::span<const StepLoss> losses) {
  if (losses.empty()) return;
  const std::string doing = str("adding ", losses.size(), " step losses to run ", run_id);
  sql::Transaction transaction(*connection_, doing);
  require_row("runs", "run", run_id);
  auto query = connection_->query(
      "INSERT INTO step_losses (run_id, block, layer, step, phase, loss) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (run_id, block, layer, step, phase) DO UPDATE SET loss = excluded.loss");
  for (const StepLoss& loss : losses) {
    query->bind(1, run_id).bind(2, loss.block).bind(3, loss.layer).bind(4, loss.step).bind(5, loss.phase);
    query->bind(6, loss.loss);
    query->run(doing);
    query->reset();
  }
  transaction.commit();
}

std::vector<StepLoss> RunDatabase::step_losses(Id run_id, const std::optional<LayerRef>& only) {
  // Two statements rather than one with "(?2 IS NULL OR ...)" so each walks the primary key.
  auto query = connection_->query(
      only ? "SELECT block, layer, step, phase, loss FROM step_losses WHERE run_id = ?1 AND block = ?2 AND "
             "layer = ?3 ORDER BY block, layer, step, phase"
           : "SELECT block, layer, step, phase, loss FROM step_losses WHERE run_id = ?1 "
             "ORDER BY block, layer, step, phase");
  query->bind(1, run_id);
  if (only) query->bind(2, only->block).bind(3, only->layer);
  std::vector<StepLoss> losses;
  while (query->step(str("reading the step losses of run ", run_id))) {
    losses.push_back(StepLoss{int(query->integer(0)), query->text(1), query->integer(2), query->text(3),
                              query->real(4)});
  }
  return losses;
}

// ---------------------------------------------------------------- evaluations

namespace {

const char* const kInsertEvaluation =
    "INSERT INTO evaluations (model_id, run_id, dataset, seqlen, windows, perplexity, nll, tokens, seconds, "
    "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

void bind_evaluation(sql::Statement& statement, Id model_id, std::optional<Id> run_id, const EvalResult& result) {
  statement.bind(1, model_id).bind(2, run_id).bind(3, result.dataset).bind(4, result.seqlen);
  statement.bind(5, result.windows).bind(6, result.perplexity).bind(7, result.nll).bind(8, result.tokens);
  statement.bind(9, result.seconds).bind(10, to_ms(now()));
}

}  // namespace

Id RunDatabase::add_model_evaluation(Id model_id, const EvalResult& result) {
  const std::string doing = str("adding a ", result.dataset, " evaluation of model ", model_id);
  sql::Transaction transaction(*connection_, doing);
  require_row("models", "model", model_id);
  auto query = connection_->query(kInsertEvaluation);
  bind_evaluation(*query, model_id, std::nullopt, result);
  query->run(doing);
  const Id id = connection_->last_insert_rowid();
  transaction.commit();
  return id;
}

Id RunDatabase::add_run_evaluation(Id run_id, const EvalResult& result) {
  const std::string doing = str("adding a ", result.dataset, " evaluation of run ", run_id);
  sql::Transaction transaction(*connection_, doing);
  const std::optional<Run> run = find_run(run_id);
  AQLM_CHECK(run, file().string(), ": run ", run_id, " does not exist");
  auto query = connection_->query(kInsertEvaluation);
  bind_evaluation(*query, run->model_id, run_id, result);
  query->run(doing);
  const Id id = connection_->last_insert_rowid();
  transaction.commit();
  return id;
}

std::vector<Evaluation> RunDatabase::evaluations_of_model(Id model_id) {
  static const std::string sql =
      str("SELECT ", rows::kEvaluationColumns, " FROM evaluations WHERE model_id = ?1 ORDER BY id");
  auto query = connection_->query(sql);
  query->bind(1, model_id);
  std::vector<Evaluation> evaluations;
  while (query->step(str("reading the evaluations of model ", model_id))) {
    evaluations.push_back(rows::read_evaluation(*query));
  }
  return evaluations;
}

std::vector<ComparePoint> RunDatabase::compare_points(Id model_id, std::string_view dataset, int seqlen) {
  // The model file's own point carries its dtype as config (the label of the reference line).
  auto query = connection_->query(
      "SELECT e.id, e.run_id, runs.method, coalesce(runs.config, models.dtype), "
      "coalesce(runs.bits_measured, runs.bits_predicted) AS bits, e.perplexity "
      "FROM (SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY id DESC) AS newest FROM evaluations "
      "      WHERE model_id = ?1 AND dataset = ?2 AND seqlen = ?3) AS e "
      "JOIN models ON models.id = e.model_id LEFT JOIN runs ON runs.id = e.run_id "
      "WHERE e.newest = 1 ORDER BY runs.method IS NOT NULL, runs.method, bits, e.id");
  query->bind(1, model_id).bind(2, dataset).bind(3, seqlen);
  std::vector<ComparePoint> points;
  while (query->step(str("reading the ", dataset, " evaluations of model ", model_id))) {
    ComparePoint point;
    point.evaluation_id = query->integer(0);
    point.run_id = query->optional_integer(1);
    if (!query->is_null(2)) point.method = parse_quant_method(query->text(2));
    point.config = query->text(3);
    point.bits = query->optional_real(4);
    point.perplexity = query->real(5);
    points.push_back(std::move(point));
  }
  return points;
}

std::optional<ComparePoint> RunDatabase::best_near_budget(Id model_id, std::string_view dataset, int seqlen,
                                                          double target_bits, double tolerance_bits) {
  std::optional<ComparePoint> best;
  auto better = [&](const ComparePoint& a, const ComparePoint& b) {
    if (a.perplexity != b.perplexity) return a.perplexity < b.perplexity;
    return std::abs(*a.bits - target_bits) < std::abs(*b.bits - target_bits);
  };
  for (ComparePoint& point : compare_points(model_id, dataset, seqlen)) {
    if (!point.bits || std::isnan(point.perplexity)) continue;
    if (std::abs(*point.bits - target_bits) > tolerance_bits) continue;
    if (!best || better(point, *best)) best = std::move(point);
  }
  return best;
}

// ---------------------------------------------------------------- artifacts

Id RunDatabase::add_artifact(Id run_id, const ArtifactInfo& artifact) {
  const std::string doing = str("recording the ", artifact.kind, " artifact ", artifact.path.string());
  sql::Transaction transaction(*connection_, doing);
  require_row("runs", "run", run_id);
  auto query = connection_->query(
      "INSERT INTO artifacts (run_id, kind, path, bytes, sha256, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (run_id, path) DO UPDATE SET kind = excluded.kind, bytes = excluded.bytes, "
      "sha256 = excluded.sha256, created_ms = excluded.created_ms RETURNING id");
  query->bind(1, run_id).bind(2, artifact.kind).bind(3, artifact.path.string()).bind(4, artifact.bytes);
  query->bind(5, artifact.sha256).bind(6, to_ms(now()));
  query->step(doing);
  const Id id = query->integer(0);
  query->run(doing);
  transaction.commit();
  return id;
}

std::vector<Artifact> RunDatabase::artifacts_of_run(Id run_id) {
  auto query = connection_->query(
      "SELECT id, run_id, kind, path, bytes, sha256, created_ms FROM artifacts WHERE run_id = ?1 ORDER BY id");
  query->bind(1, run_id);
  std::vector<Artifact> artifacts;
  while (query->step(str("reading the artifacts of run ", run_id))) {
    Artifact a;
    a.id = query->integer(0);
    a.run_id = query->integer(1);
    a.kind = query->text(2);
    a.path = query->text(3);
    a.bytes = query->integer(4);
    a.sha256 = query->text(5);
    a.created = rows::from_ms(query->integer(6));
    artifacts.push_back(std::move(a));
  }
  return artifacts;
}

}  // namespace aqlm::store
