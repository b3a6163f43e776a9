#include "core/store/schema.h"

#include <sqlite3.h>

#include <array>
#include <cstring>
#include <fstream>

#include "core/common/error.h"
#include "core/store/database_errors.h"

namespace aqlm::store {
namespace {

constexpr Migration kBuiltinMigrations[] = {
#include "core/store/builtin_migrations.inc"
};

[[noreturn]] void fail_newer(const std::filesystem::path& file, std::int64_t version, int latest) {
  fail(file.string(), ": the run database has schema version ", version,
       " but this AQLM Studio understands versions up to ", latest,
       "; update AQLM Studio or choose another database file (the file was left untouched)");
}

[[noreturn]] void fail_foreign(const std::filesystem::path& file, std::uint32_t application_id) {
  fail(file.string(), ": is a SQLite database of another program (application id 0x", std::hex, application_id,
       "), not an AQLM Studio run database; choose another file");
}

std::uint32_t big_endian_u32(const unsigned char* bytes) {
  return std::uint32_t(bytes[0]) << 24 | std::uint32_t(bytes[1]) << 16 | std::uint32_t(bytes[2]) << 8 |
         std::uint32_t(bytes[3]);
}

std::int64_t pragma_integer(sql::Connection& connection, std::string_view pragma) {
  auto query = connection.query(pragma);
  query->step("inspecting the database");
  return query->integer(0);
}

}  // namespace

std::span<const Migration> builtin_migrations() { return kBuiltinMigrations; }

int latest_schema_version() { return builtin_migrations().back().version; }

void check_file_header(const std::filesystem::path& file, int latest_version) {
  std::ifstream in(file, std::ios::binary);
  AQLM_CHECK(in, file.string(), ": cannot read: ", std::strerror(errno));
  std::array<unsigned char, 100> header{};
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  const auto got = size_t(in.gcount());
  if (got == 0) return;  // an empty file is an empty database
  static constexpr char kMagic[] = "SQLite format 3";  // 16 bytes with its NUL
  if (got < header.size() || std::memcmp(header.data(), kMagic, sizeof kMagic) != 0) {
    throw CorruptDatabaseError(file, str(file.string(), ": is not a database (it does not start with a SQLite ",
                                         "header); move it aside and start a fresh one"));
  }
  const std::uint32_t user_version = big_endian_u32(header.data() + 60);
  const std::uint32_t application_id = big_endian_u32(header.data() + 68);
  if (application_id != 0 && application_id != std::uint32_t(kApplicationId)) fail_foreign(file, application_id);
  if (user_version > std::uint32_t(latest_version)) fail_newer(file, user_version, latest_version);
}

void check_before_writing(sql::Connection& read_only, int latest_version) {
  const std::int64_t version = schema_version(read_only);
  const auto application_id = std::uint32_t(pragma_integer(read_only, "PRAGMA application_id"));
  if (application_id != 0 && application_id != std::uint32_t(kApplicationId)) {
    fail_foreign(read_only.file(), application_id);
  }
  if (version > latest_version) fail_newer(read_only.file(), version, latest_version);
  if (version == 0 && pragma_integer(read_only, "SELECT count(*) FROM sqlite_schema") > 0) {
    fail(read_only.file().string(), ": is a SQLite database of another program (it has tables but no ",
         "AQLM Studio schema version); choose another file");
  }
  // quick_check reads every page and checks the b-trees (not index contents, which the
  // slower integrity_check also compares); it catches a damaged file before the first
  // write makes it worse.
  require_intact(read_only, "quick_check");
}

void require_intact(sql::Connection& connection, std::string_view check) {
  auto query = connection.query(str("PRAGMA ", check, "(3)"));
  std::string findings;
  while (query->step("checking the database")) {
    std::string finding = query->text(0);
    if (finding == "ok") return;
    // SQLite's report has several lines ("*** in database main ***\nPage 110: ..."); keep one.
    for (char& c : finding) {
      if (c == '\n') c = ' ';
    }
    findings += str(findings.empty() ? "" : "; ", finding);
  }
  throw CorruptDatabaseError(connection.file(), str(connection.file().string(), ": the database is damaged (", check,
                                                    ": ", findings, "); move it aside and start a fresh one"));
}

int schema_version(sql::Connection& connection) {
  return int(pragma_integer(connection, "PRAGMA user_version"));
}

int migrate(sql::Connection& connection, std::span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    AQLM_CHECK(migrations[i].version == int(i) + 1, "run database: migration '", migrations[i].name,
               "' has version ", migrations[i].version, " but should have ", i + 1);
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  // Foreign keys cannot be switched inside a transaction; off for the duration so a
  // migration may rebuild a table, then on again whatever happens.
  connection.exec("PRAGMA foreign_keys = OFF", "preparing a schema upgrade");
  struct ForeignKeysOnAtExit {
    sql::Connection& connection;
    // Fails only on an unusable connection, which the next call reports.
    ~ForeignKeysOnAtExit() { sqlite3_exec(connection.handle(), "PRAGMA foreign_keys = ON", nullptr, nullptr, nullptr); }
  } foreign_keys_on_at_exit{connection};

  int version = schema_version(connection);
  while (version < latest) {
    const Migration& next = migrations[size_t(version)];
    const std::string doing = str("upgrading the schema to version ", next.version, " (", next.name, ")");
    sql::Transaction transaction(connection, doing);
    const int current = schema_version(connection);  // another process may have upgraded meanwhile
    if (current != version) {
      version = current;
      continue;
    }
    connection.exec(next.sql, doing);
    {
      auto check = connection.query("PRAGMA foreign_key_check");
      if (check->step(doing)) {
        fail(connection.file().string(), ": ", doing, " failed: table ", check->text(0),
             " has a row whose foreign key points nowhere");
      }
    }
    connection.exec(str("PRAGMA user_version = ", next.version), doing);
    connection.exec(str("PRAGMA application_id = ", kApplicationId), doing);
    transaction.commit();
    version = next.version;
  }
  if (version > latest) fail_newer(connection.file(), version, latest);
  return version;
}

}  // namespace aqlm::store
