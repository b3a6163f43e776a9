#pragma once
// The run database's schema versions and the migrations between them.
//
// PRAGMA user_version holds the schema version; PRAGMA application_id marks the file as
// ours. Each migration core/store/migrations/NNN_name.sql produces version NNN from
// NNN-1; a new schema version is one more file (plus the code that reads new columns).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

#include "core/store/sqlite.h"

namespace aqlm::store {

// "AQLM" as a big-endian integer, written to the SQLite header at offset 68.
inline constexpr std::int32_t kApplicationId = 0x41514C4D;

struct Migration {
  int version;            // the schema version this migration produces
  std::string_view name;  // from the file name: "initial"
  std::string_view sql;
};

// The migrations compiled into this program, in version order 1, 2, ...
std::span<const Migration> builtin_migrations();
int latest_schema_version();

// Reads the 100-byte SQLite header with plain file I/O, without SQLite touching the
// file. Throws CorruptDatabaseError when it is not a SQLite file, Error when it belongs
// to another program or its schema is newer than `latest_version`. An empty file is fine.
void check_file_header(const std::filesystem::path& file, int latest_version);

// On a read-only connection, before anything is written: the schema version (the
// header may lag behind a write-ahead log), whether the file is ours, and PRAGMA
// quick_check. Throws like check_file_header.
void check_before_writing(sql::Connection& read_only, int latest_version);

// Runs PRAGMA quick_check or integrity_check; throws CorruptDatabaseError with the
// first findings on one line unless the answer is "ok".
void require_intact(sql::Connection& connection, std::string_view check);

int schema_version(sql::Connection& connection);

// Brings the database to the last version in `migrations` (which must be 1, 2, ... n).
// Each step runs in its own transaction together with its version bump, with foreign
// keys off and checked before commit (the SQLite procedure for rebuilding tables), so a
// failure leaves the file at the previous version. Returns the final version.
int migrate(sql::Connection& connection, std::span<const Migration> migrations);

}  // namespace aqlm::store
