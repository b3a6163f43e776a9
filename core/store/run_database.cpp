// RunDatabase: opening, schema upgrade, recovery from a damaged file; models and runs.
#include "core/store/run_database.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>

#include "core/common/error.h"
#include "core/common/paths.h"
#include "core/store/rows.h"
#include "core/store/schema.h"
#include "core/store/sqlite.h"

namespace aqlm::store {
namespace fs = std::filesystem;
using rows::from_ms;
using rows::to_ms;

namespace {

// WAL: readers never wait for the writer, so the studio's views stay live while a run
// streams step losses. synchronous=NORMAL is the WAL setting SQLite recommends: a power
// cut may lose the last commits but never corrupts the file.
void configure(sql::Connection& connection) {
  {
    auto query = connection.query("PRAGMA journal_mode = WAL");
    query->step("switching to write-ahead logging");
    const std::string mode = query->text(0);
    AQLM_CHECK(mode == "wal", connection.file().string(), ": cannot use write-ahead logging (journal mode stays '",
               mode, "'); put the database on a local disk");
  }
  connection.exec("PRAGMA synchronous = NORMAL", "configuring the database");
  connection.exec("PRAGMA foreign_keys = ON", "configuring the database");
}

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

bool run_may_move(RunStatus from, RunStatus to) {
  switch (to) {
    case RunStatus::Running:
      return from == RunStatus::Queued || from == RunStatus::Paused || from == RunStatus::Failed ||
             from == RunStatus::Cancelled;
    case RunStatus::Paused:
      return from == RunStatus::Running;
    case RunStatus::Queued:
      return from == RunStatus::Failed || from == RunStatus::Cancelled;
    case RunStatus::Failed:
    case RunStatus::Cancelled:
      return !is_over(from);
    case RunStatus::Finished:
      return from == RunStatus::Running;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- lifecycle

RunDatabase::RunDatabase(std::unique_ptr<sql::Connection> connection) : connection_(std::move(connection)) {}
RunDatabase::RunDatabase(RunDatabase&&) noexcept = default;
RunDatabase& RunDatabase::operator=(RunDatabase&&) noexcept = default;
RunDatabase::~RunDatabase() = default;

fs::path RunDatabase::default_path() { return app_data_dir() / "runs.sqlite"; }

RunDatabase RunDatabase::open(const fs::path& file) {
  AQLM_CHECK(!file.empty(), "run database: no file name given");
  const int latest = latest_schema_version();
  std::error_code error;
  const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  fs::create_directories(folder, error);
  AQLM_CHECK(!error, file.string(), ": cannot create the folder ", folder.string(), ": ", error.message());
  // SQLite would only say "unable to open database file" or "read-only": name the real
  // obstacle. The folder must be writable even for an existing file, for the -wal/-shm files.
  AQLM_CHECK(::access(folder.c_str(), W_OK | X_OK) == 0, file.string(), ": the folder ", folder.string(),
             " may not be written (", std::strerror(errno), "); the database and its write-ahead log need it");
  if (fs::exists(file, error)) {
    AQLM_CHECK(fs::is_regular_file(file, error), file.string(), ": is not a file");
    check_file_header(file, latest);
    if (fs::file_size(file, error) > 0) {
      sql::Connection read_only(file, sql::Connection::Access::ReadOnly);
      check_before_writing(read_only, latest);
    }
  }
  auto connection = std::make_unique<sql::Connection>(file, sql::Connection::Access::ReadWriteCreate);
  AQLM_CHECK(!connection->is_read_only(), file.string(),
             ": the database file is read-only (check its permissions); AQLM Studio needs to write to it");
  configure(*connection);
  migrate(*connection, builtin_migrations());
  return RunDatabase(std::move(connection));
}

RunDatabase::Recreated RunDatabase::move_aside_and_recreate(const fs::path& file) {
  const std::string stamp = utc_stamp();
  fs::path kept = file.string() + ".corrupt-" + stamp;
  for (int n = 2; fs::exists(kept) || fs::exists(kept.string() + "-wal"); ++n) {
    kept = file.string() + ".corrupt-" + stamp + "-" + std::to_string(n);
  }
  std::error_code error;
  fs::rename(file, kept, error);
  AQLM_CHECK(!error, file.string(), ": cannot move the damaged database aside to ", kept.string(), ": ",
             error.message());
  // The companions keep SQLite's naming (<name>-wal), so the kept copy opens with its log.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    const fs::path companion = file.string() + suffix;
    if (!fs::exists(companion, error)) continue;
    fs::rename(companion, kept.string() + suffix, error);
    AQLM_CHECK(!error, companion.string(), ": cannot move aside to ", kept.string() + suffix, ": ",
               error.message());
  }
  return Recreated{open(file), kept};
}

const fs::path& RunDatabase::file() const { return connection_->file(); }

int RunDatabase::schema_version() { return store::schema_version(*connection_); }

void RunDatabase::check_integrity() { require_intact(*connection_, "integrity_check"); }

std::int64_t RunDatabase::data_version() {
  auto query = connection_->query("PRAGMA data_version");
  query->step("reading the data version");
  return query->integer(0);
}

void RunDatabase::require_row(std::string_view table, std::string_view what, Id id) {
  auto query = connection_->query(str("SELECT 1 FROM ", table, " WHERE id = ?1"));
  query->bind(1, id);
  AQLM_CHECK(query->step(str("looking up ", what, " ", id)), file().string(), ": ", what, " ", id, " does not exist");
}

// ---------------------------------------------------------------- models

Id RunDatabase::add_model(const ModelInfo& model) {
  const std::string doing = str("adding the model ", model.path.string());
  auto query = connection_->query(
      "INSERT INTO models (name, path, format, architecture, parameters, dtype, size_bytes, added_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT (path) DO UPDATE SET name = excluded.name, format = excluded.format, "
      "architecture = excluded.architecture, parameters = excluded.parameters, dtype = excluded.dtype, "
      "size_bytes = excluded.size_bytes RETURNING id");
  query->bind(1, model.name).bind(2, model.path.string()).bind(3, model.format).bind(4, model.architecture);
  query->bind(5, model.parameters).bind(6, model.dtype).bind(7, model.size_bytes).bind(8, to_ms(now()));
  query->step(doing);
  const Id id = query->integer(0);
  query->run(doing);  // to the end of the statement, which commits it
  return id;
}

std::optional<Model> RunDatabase::find_model(Id id) {
  static const std::string sql = str("SELECT ", rows::kModelColumns, " FROM models WHERE id = ?1");
  auto query = connection_->query(sql);
  query->bind(1, id);
  if (!query->step(str("reading model ", id))) return std::nullopt;
  return rows::read_model(*query);
}

std::optional<Model> RunDatabase::find_model_by_path(const fs::path& path) {
  static const std::string sql = str("SELECT ", rows::kModelColumns, " FROM models WHERE path = ?1");
  auto query = connection_->query(sql);
  query->bind(1, path.string());
  if (!query->step(str("reading the model ", path.string()))) return std::nullopt;
  return rows::read_model(*query);
}

std::vector<ModelSummary> RunDatabase::list_models() {
  static const std::string sql = str(
      "SELECT ", rows::kModelColumns,
      ", (SELECT count(*) FROM runs WHERE runs.model_id = models.id), "
      "(SELECT count(*) FROM runs WHERE runs.model_id = models.id AND runs.status = 'finished') "
      "FROM models ORDER BY models.added_ms, models.id");
  auto query = connection_->query(sql);
  std::vector<ModelSummary> models;
  while (query->step("listing the models")) {
    ModelSummary summary;
    static_cast<Model&>(summary) = rows::read_model(*query);
    summary.run_count = query->integer(rows::kModelColumnCount);
    summary.finished_run_count = query->integer(rows::kModelColumnCount + 1);
    models.push_back(std::move(summary));
  }
  return models;
}

void RunDatabase::remove_model(Id id) {
  auto query = connection_->query("DELETE FROM models WHERE id = ?1");
  query->bind(1, id).run(str("removing model ", id));
  AQLM_CHECK(connection_->changes() == 1, file().string(), ": model ", id, " does not exist");
}

// ---------------------------------------------------------------- runs

Id RunDatabase::create_run(const RunRequest& request) {
  const std::string doing = str("creating a ", name(request.method), " ", request.config, " run");
  AQLM_CHECK(request.settings.is_object(), file().string(), ": ", doing, " failed: settings must be a JSON object");
  sql::Transaction transaction(*connection_, doing);
  require_row("models", "model", request.model_id);
  auto query = connection_->query(
      "INSERT INTO runs (model_id, method, config, settings_json, created_ms, output_dir, checkpoint_dir, "
      "bits_predicted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  query->bind(1, request.model_id).bind(2, name(request.method)).bind(3, request.config);
  query->bind(4, request.settings.dump()).bind(5, to_ms(now())).bind(6, request.output_dir.string());
  query->bind(7, request.checkpoint_dir.string()).bind(8, request.bits_predicted);
  query->run(doing);
  const Id id = connection_->last_insert_rowid();
  transaction.commit();
  return id;
}

std::optional<Run> RunDatabase::find_run(Id id) {
  static const std::string sql = str("SELECT ", rows::kRunColumns, " FROM runs WHERE id = ?1");
  auto query = connection_->query(sql);
  query->bind(1, id);
  if (!query->step(str("reading run ", id))) return std::nullopt;
  return rows::read_run(*query, *connection_);
}

std::vector<RunSummary> RunDatabase::runs_of_model(Id model_id) {
  const std::string doing = str("listing the runs of model ", model_id);
  static const std::string runs_sql = str(
      "SELECT ", rows::kRunColumns,
      ", count(layer_metrics.id), avg(layer_metrics.relative_error), total(layer_metrics.seconds) "
      "FROM runs LEFT JOIN layer_metrics ON layer_metrics.run_id = runs.id "
      "WHERE runs.model_id = ?1 GROUP BY runs.id ORDER BY runs.id");
  std::vector<RunSummary> runs;
  std::map<Id, size_t> index_of_run;
  {
    auto query = connection_->query(runs_sql);
    query->bind(1, model_id);
    while (query->step(doing)) {
      RunSummary summary;
      static_cast<Run&>(summary) = rows::read_run(*query, *connection_);
      summary.layers_done = query->integer(rows::kRunColumnCount);
      summary.mean_relative_error = query->optional_real(rows::kRunColumnCount + 1);
      summary.layer_seconds = query->real(rows::kRunColumnCount + 2);
      index_of_run[summary.id] = runs.size();
      runs.push_back(std::move(summary));
    }
  }
  static const std::string evaluations_sql = str(
      "SELECT ", rows::kEvaluationColumns, " FROM (SELECT *, row_number() OVER ",
      "(PARTITION BY run_id, dataset, seqlen ORDER BY id DESC) AS newest FROM evaluations ",
      "WHERE model_id = ?1 AND run_id IS NOT NULL) WHERE newest = 1 ORDER BY run_id, dataset, seqlen");
  auto query = connection_->query(evaluations_sql);
  query->bind(1, model_id);
  while (query->step(doing)) {
    Evaluation evaluation = rows::read_evaluation(*query);
    runs[index_of_run.at(*evaluation.run_id)].latest_evaluations.push_back(std::move(evaluation));
  }
  return runs;
}

std::vector<Run> RunDatabase::runs_with_status(RunStatus status) {
  static const std::string sql = str("SELECT ", rows::kRunColumns, " FROM runs WHERE status = ?1 ORDER BY id");
  auto query = connection_->query(sql);
  query->bind(1, name(status));
  std::vector<Run> runs;
  while (query->step(str("listing the ", name(status), " runs"))) runs.push_back(rows::read_run(*query, *connection_));
  return runs;
}

void RunDatabase::set_run_status(Id run_id, RunStatus status, std::string_view error) {
  const std::string doing = str("marking run ", run_id, " ", name(status));
  AQLM_CHECK(status != RunStatus::Finished, file().string(), ": ", doing, " failed: use finish_run with its results");
  AQLM_CHECK((status == RunStatus::Failed) == !error.empty(), file().string(), ": ", doing, " failed: ",
             status == RunStatus::Failed ? "a failed run needs its error message" : "only a failed run has an error message");
  sql::Transaction transaction(*connection_, doing);
  const std::optional<Run> run = find_run(run_id);
  AQLM_CHECK(run, file().string(), ": run ", run_id, " does not exist");
  AQLM_CHECK(run_may_move(run->status, status), file().string(), ": run ", run_id, " cannot go from ",
             name(run->status), " to ", name(status));
  // started: the first time it ran; finished: set when it ends, cleared when it runs again.
  const std::int64_t time = to_ms(now());
  auto query = connection_->query(
      "UPDATE runs SET status = ?2, error_message = ?3, started_ms = coalesce(started_ms, ?4), "
      "finished_ms = ?5 WHERE id = ?1");
  query->bind(1, run_id).bind(2, name(status)).bind(3, error);
  if (status == RunStatus::Running) query->bind(4, time);
  if (is_over(status)) query->bind(5, time);
  query->run(doing);
  transaction.commit();
}

void RunDatabase::finish_run(Id run_id, const RunOutput& output) {
  const std::string doing = str("finishing run ", run_id);
  AQLM_CHECK(std::isfinite(output.bits_measured) && output.bits_measured > 0, file().string(), ": ", doing,
             " failed: the measured bits per parameter must be a positive number, got ", output.bits_measured);
  sql::Transaction transaction(*connection_, doing);
  const std::optional<Run> run = find_run(run_id);
  AQLM_CHECK(run, file().string(), ": run ", run_id, " does not exist");
  AQLM_CHECK(run_may_move(run->status, RunStatus::Finished), file().string(), ": run ", run_id,
             " cannot go from ", name(run->status), " to finished");
  auto query = connection_->query(
      "UPDATE runs SET status = 'finished', error_message = '', finished_ms = ?2, bits_measured = ?3, "
      "output_bytes = ?4 WHERE id = ?1");
  query->bind(1, run_id).bind(2, to_ms(now())).bind(3, output.bits_measured).bind(4, output.output_bytes);
  query->run(doing);
  transaction.commit();
}

void RunDatabase::remove_run(Id id) {
  auto query = connection_->query("DELETE FROM runs WHERE id = ?1");
  query->bind(1, id).run(str("removing run ", id));
  AQLM_CHECK(connection_->changes() == 1, file().string(), ": run ", id, " does not exist");
}

}  // namespace aqlm::store
