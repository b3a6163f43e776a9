#pragma once
// The run database: everything the studio and the CLI show later (models, runs, layer
// metrics, step losses, evaluations, artifacts, chats) in one SQLite file, by default
// app_data_dir()/runs.sqlite.
//
// Threads: a RunDatabase is one SQLite connection and must be used by one thread at a
// time. Open one per thread (the studio: one per worker and one for the views) on the
// same file; WAL mode lets readers run while a writer commits, and a writer waits up to
// 5 s for another writer's lock before reporting it.
//
// Errors: every failure is an aqlm::Error with one line naming the file, the action and
// the reason (disk full, read-only folder, newer schema, missing row ...). A damaged file
// throws CorruptDatabaseError; move_aside_and_recreate() then keeps the old bytes under
// a new name and starts a fresh database.
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/store/database_errors.h"
#include "core/store/records.h"

namespace aqlm::store {

namespace sql {
class Connection;
}

class RunDatabase {
 public:
  // Opens `file`, creating it (and its folder) when absent, and upgrades its schema.
  // An existing file is inspected first without writing: its header, then a read-only
  // connection (schema version, PRAGMA quick_check); a newer schema or a foreign file is
  // refused with the file left byte for byte as it was. quick_check reads the whole file:
  // about 0.2-0.5 s per million step losses (47 MB), so open once per thread, not per call.
  static RunDatabase open(const std::filesystem::path& file);
  static std::filesystem::path default_path();  // app_data_dir()/runs.sqlite

  struct Recreated;
  // After CorruptDatabaseError: renames `file` (and its -wal/-shm companions) to
  // `<file>.corrupt-<UTC time>` beside it, never deleting anything, and opens a fresh
  // database at `file`.
  static Recreated move_aside_and_recreate(const std::filesystem::path& file);

  RunDatabase(RunDatabase&&) noexcept;
  RunDatabase& operator=(RunDatabase&&) noexcept;
  ~RunDatabase();

  const std::filesystem::path& file() const;
  int schema_version();
  // The full PRAGMA integrity_check (slow on a big file); throws CorruptDatabaseError.
  void check_integrity();
  // SQLite's PRAGMA data_version: it changes when another connection (another thread, or
  // aqlm-cli quantize --db in another process) commits, and not for this connection's own
  // commits. Cheap (no table is read): the studio polls it to notice runs written elsewhere.
  std::int64_t data_version();

  // -------------------------------------------------------------- models
  // Adds a model, or refreshes the row with the same path (keeping its id and added time).
  Id add_model(const ModelInfo& model);
  std::optional<Model> find_model(Id id);
  std::optional<Model> find_model_by_path(const std::filesystem::path& path);
  std::vector<ModelSummary> list_models();  // oldest first, with run counts
  // Removes the model with its runs, metrics and evaluations; its chats stay, unlinked.
  void remove_model(Id id);

  // -------------------------------------------------------------- runs
  Id create_run(const RunRequest& request);  // status queued
  std::optional<Run> find_run(Id id);
  std::vector<RunSummary> runs_of_model(Id model_id);  // oldest first
  std::vector<Run> runs_with_status(RunStatus status);  // e.g. running ones left by a crash
  // Moves a run along queued -> running <-> paused, and to failed/cancelled from any
  // unfinished state; failed/cancelled runs may be queued or resumed again. `error` is
  // required for Failed and only for it. Finished is reached only through finish_run.
  void set_run_status(Id run_id, RunStatus status, std::string_view error = {});
  void finish_run(Id run_id, const RunOutput& output);  // running -> finished, with results
  void remove_run(Id id);

  // -------------------------------------------------------------- metrics
  void record_layer_metric(Id run_id, const LayerMetric& metric);  // replaces a redone layer
  std::vector<LayerMetric> layer_table(Id run_id);                   // by block, in recording order
  // One transaction for the whole batch; a step recorded again (resume) is overwritten.
  void add_step_losses(Id run_id, std::span<const StepLoss> losses);
  // By block, layer, step, phase; `only` restricts to one layer of one block.
  std::vector<StepLoss> step_losses(Id run_id, const std::optional<LayerRef>& only = std::nullopt);

  // -------------------------------------------------------------- evaluations
  Id add_model_evaluation(Id model_id, const EvalResult& result);
  Id add_run_evaluation(Id run_id, const EvalResult& result);
  std::vector<Evaluation> evaluations_of_model(Id model_id);  // of the file and of its runs, oldest first
  // The newest evaluation on `dataset` at `seqlen` of the model file and of each of its
  // runs, ordered by method then bits.
  std::vector<ComparePoint> compare_points(Id model_id, std::string_view dataset, int seqlen);
  // The lowest perplexity among compare_points with bits in target ± tolerance (ties:
  // closer to the target), for the wizard's "best reached near this budget".
  std::optional<ComparePoint> best_near_budget(Id model_id, std::string_view dataset, int seqlen, double target_bits,
                                               double tolerance_bits);

  // -------------------------------------------------------------- artifacts
  Id add_artifact(Id run_id, const ArtifactInfo& artifact);  // replaces the row of the same path
  std::vector<Artifact> artifacts_of_run(Id run_id);

  // -------------------------------------------------------------- chat
  Id create_conversation(const ConversationInfo& conversation);
  Id add_message(Id conversation_id, const MessageInfo& message);
  // Removes one message (the Chat tab's Regenerate replaces the last reply).
  void remove_message(Id message_id);
  void rename_conversation(Id conversation_id, std::string_view title);
  void remove_conversation(Id conversation_id);
  std::vector<ConversationSummary> list_conversations();  // most recently active first
  std::optional<ConversationWithMessages> conversation(Id conversation_id);

 private:
  explicit RunDatabase(std::unique_ptr<sql::Connection> connection);
  void require_row(std::string_view table, std::string_view what, Id id);
  std::unique_ptr<sql::Connection> connection_;
};

struct RunDatabase::Recreated {
  RunDatabase database;                 // fresh and empty
  std::filesystem::path corrupt_copy;   // where the old file now is
};

}  // namespace aqlm::store
