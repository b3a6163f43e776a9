#pragma once
// Private to core/store: the column lists of the record types and the functions that
// bind and read them, shared by the run_database*.cpp files so each table is spelled once.
#include <string>

#include "core/common/error.h"
#include "core/store/records.h"
#include "core/store/sqlite.h"

namespace aqlm::store::rows {

inline std::int64_t to_ms(Timestamp t) { return t.time_since_epoch().count(); }
inline std::optional<std::int64_t> to_ms(const std::optional<Timestamp>& t) {
  if (!t) return std::nullopt;
  return to_ms(*t);
}
inline Timestamp from_ms(std::int64_t ms) { return Timestamp(std::chrono::milliseconds(ms)); }
inline std::optional<Timestamp> from_ms(std::optional<std::int64_t> ms) {
  if (!ms) return std::nullopt;
  return from_ms(*ms);
}

// A JSON column written by this code and guarded by CHECK (json_valid(...)).
inline nlohmann::json json_column(const sql::Statement& row, int column, const sql::Connection& connection) {
  try {
    return nlohmann::json::parse(row.text(column));
  } catch (const nlohmann::json::exception& e) {
    fail(connection.file().string(), ": a stored JSON value cannot be read (", e.what(), ")");
  }
}

inline constexpr const char* kModelColumns =
    "models.id, models.name, models.path, models.format, models.architecture, models.parameters, models.dtype, "
    "models.size_bytes, models.added_ms";
inline constexpr int kModelColumnCount = 9;

inline Model read_model(const sql::Statement& row, int first = 0) {
  Model m;
  m.id = row.integer(first);
  m.name = row.text(first + 1);
  m.path = row.text(first + 2);
  m.format = row.text(first + 3);
  m.architecture = row.text(first + 4);
  m.parameters = row.integer(first + 5);
  m.dtype = row.text(first + 6);
  m.size_bytes = row.integer(first + 7);
  m.added = from_ms(row.integer(first + 8));
  return m;
}

inline constexpr const char* kRunColumns =
    "runs.id, runs.model_id, runs.method, runs.config, runs.settings_json, runs.status, runs.error_message, "
    "runs.created_ms, runs.started_ms, runs.finished_ms, runs.output_dir, runs.checkpoint_dir, "
    "runs.bits_predicted, runs.bits_measured, runs.output_bytes";
inline constexpr int kRunColumnCount = 15;

inline Run read_run(const sql::Statement& row, const sql::Connection& connection, int first = 0) {
  Run r;
  r.id = row.integer(first);
  r.model_id = row.integer(first + 1);
  r.method = parse_quant_method(row.text(first + 2));
  r.config = row.text(first + 3);
  r.settings = json_column(row, first + 4, connection);
  r.status = parse_run_status(row.text(first + 5));
  r.error_message = row.text(first + 6);
  r.created = from_ms(row.integer(first + 7));
  r.started = from_ms(row.optional_integer(first + 8));
  r.finished = from_ms(row.optional_integer(first + 9));
  r.output_dir = row.text(first + 10);
  r.checkpoint_dir = row.text(first + 11);
  r.bits_predicted = row.optional_real(first + 12);
  r.bits_measured = row.optional_real(first + 13);
  r.output_bytes = row.optional_integer(first + 14);
  return r;
}

inline constexpr const char* kEvaluationColumns =
    "id, model_id, run_id, dataset, seqlen, windows, perplexity, nll, tokens, seconds, created_ms";

inline Evaluation read_evaluation(const sql::Statement& row, int first = 0) {
  Evaluation e;
  e.id = row.integer(first);
  e.model_id = row.integer(first + 1);
  e.run_id = row.optional_integer(first + 2);
  e.dataset = row.text(first + 3);
  e.seqlen = int(row.integer(first + 4));
  e.windows = int(row.integer(first + 5));
  e.perplexity = row.real(first + 6);
  e.nll = row.real(first + 7);
  e.tokens = row.integer(first + 8);
  e.seconds = row.real(first + 9);
  e.created = from_ms(row.integer(first + 10));
  return e;
}

}  // namespace aqlm::store::rows
