#include "core/store/sqlite.h"

#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "core/common/error.h"
#include "core/store/database_errors.h"

namespace aqlm::store::sql {
namespace {

// Another connection (the CLI in a second process, a worker thread) may hold the write
// lock for a while during a batch insert; waiting this long before giving up keeps
// ordinary contention invisible while a stuck process still gets reported.
constexpr int kBusyTimeoutMs = 5000;

// Why the call failed, in words a user can act on.
std::string reason(sqlite3* db, int rc) {
  const int os_errno = db ? sqlite3_system_errno(db) : 0;
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return "the disk is full";
    case SQLITE_IOERR:
      return str("I/O error (", os_errno ? std::strerror(os_errno) : detail.c_str(), ")");
    case SQLITE_READONLY:
      return "the database is read-only (check that you may write to the file and its folder)";
    case SQLITE_CANTOPEN:
      return str("cannot open the file (", os_errno ? std::strerror(os_errno) : detail.c_str(), ")");
    case SQLITE_PERM:
      return "permission denied";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return str("the database stayed locked by another connection for more than ", kBusyTimeoutMs / 1000, " s");
    case SQLITE_NOMEM:
      return "out of memory";
    default:
      return detail;
  }
}

}  // namespace

// ---------------------------------------------------------------- Statement

Statement::Statement(Connection& connection, std::string_view sql) : connection_(connection) {
  const int rc = sqlite3_prepare_v3(connection.handle(), sql.data(), int(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt_, nullptr);
  if (rc != SQLITE_OK) connection.fail(rc, "preparing a query");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) connection_.fail(rc, "binding a query parameter");
  return *this;
}

Statement& Statement::bind(int index, double value) {
  const int rc = sqlite3_bind_double(stmt_, index, value);
  if (rc != SQLITE_OK) connection_.fail(rc, "binding a query parameter");
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  // An empty string_view may have a null data(), which SQLite would store as NULL.
  const char* bytes = value.data() ? value.data() : "";
  const int rc = sqlite3_bind_text64(stmt_, index, bytes, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) connection_.fail(rc, "binding a query parameter");
  return *this;
}

Statement& Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) connection_.fail(rc, "binding a query parameter");
  return *this;
}

bool Statement::step(std::string_view doing) {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(stmt_);
  connection_.fail(rc, doing);
}

void Statement::run(std::string_view doing) {
  while (step(doing)) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::int64_t Statement::integer(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::real(int column) const {
  if (is_null(column)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(stmt_, column);
}

std::string Statement::text(int column) const {
  const auto* bytes = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (!bytes) return {};
  return std::string(bytes, size_t(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::int64_t> Statement::optional_integer(int column) const {
  if (is_null(column)) return std::nullopt;
  return integer(column);
}

std::optional<double> Statement::optional_real(int column) const {
  if (is_null(column)) return std::nullopt;
  return sqlite3_column_double(stmt_, column);
}

// ---------------------------------------------------------------- Query

Query::Query(Statement& statement) : statement_(statement) {
  // A programming error inside core/store, never a user's: two Queries would share one cursor.
  if (statement_.borrowed_) throw std::logic_error("core/store: a cached statement was used while still in use");
  statement_.borrowed_ = true;
}

Query::~Query() {
  statement_.reset();
  statement_.borrowed_ = false;
}

// ---------------------------------------------------------------- Connection

Connection::Connection(std::filesystem::path file, Access access) : file_(std::move(file)) {
  // NOMUTEX: a Connection is used by one thread at a time (see RunDatabase), so SQLite's
  // own per-call mutex would only cost time. EXRESCODE: extended codes for fail().
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= access == Access::ReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const int rc = sqlite3_open_v2(file_.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = reason(db_, rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    ::aqlm::fail(file_.string(), ": opening the database failed: ", why);
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
}

Connection::~Connection() {
  statements_.clear();  // finalize before closing so the close is immediate
  sqlite3_close_v2(db_);
}

bool Connection::is_read_only() const { return sqlite3_db_readonly(db_, "main") == 1; }

void Connection::exec(std::string_view sql, std::string_view doing) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, doing);
}

Query Connection::query(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    it = statements_.emplace(std::string(sql), std::make_unique<Statement>(*this, sql)).first;
  }
  return Query(*it->second);
}

std::int64_t Connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

std::int64_t Connection::changes() const { return sqlite3_changes64(db_); }

void Connection::fail(int rc, std::string_view doing) const {
  const int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    throw CorruptDatabaseError(file_, str(file_.string(), ": ", doing, " failed: the database is damaged (",
                                          sqlite3_errmsg(db_), "); move it aside and start a fresh one"));
  }
  ::aqlm::fail(file_.string(), ": ", doing, " failed: ", reason(db_, rc));
}

// ---------------------------------------------------------------- Transaction

Transaction::Transaction(Connection& connection, std::string_view doing) : connection_(connection), doing_(doing) {
  connection_.exec("BEGIN IMMEDIATE", doing_);
}

Transaction::~Transaction() {
  // SQLite rolls back by itself after some errors (disk full, I/O); only roll back
  // what is still open, and never throw from here.
  if (open_ && sqlite3_get_autocommit(connection_.handle()) == 0) {
    sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Transaction::commit() {
  connection_.exec("COMMIT", doing_);
  open_ = false;
}

}  // namespace aqlm::store::sql
