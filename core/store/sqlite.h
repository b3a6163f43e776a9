#pragma once
// A thin RAII layer over the SQLite C API, private to core/store (nothing outside this
// folder writes SQL). A Connection belongs to one thread; its prepared statements are
// cached and reused; every SQLite failure becomes a one-line aqlm::Error (or
// CorruptDatabaseError) that names the file, the action and the reason.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

struct sqlite3;
struct sqlite3_stmt;

namespace aqlm::store::sql {

class Connection;

// A prepared statement. Parameters are bound by 1-based index, columns read by 0-based
// index. A NaN double is stored as NULL (SQLite's own rule); real() reads NULL back as
// NaN, optional_real() as nullopt.
class Statement {
 public:
  Statement(Connection& connection, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, std::int64_t(value)); }
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind_null(int index);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }

  // Advances to the next row; false when there are no more. `doing` names the action
  // for error messages ("list models").
  bool step(std::string_view doing);
  void run(std::string_view doing);  // executes a statement that returns no rows
  void reset();                      // ready to run again, bindings cleared

  bool is_null(int column) const;
  std::int64_t integer(int column) const;
  double real(int column) const;
  std::string text(int column) const;
  std::optional<std::int64_t> optional_integer(int column) const;
  std::optional<double> optional_real(int column) const;

 private:
  friend class Query;
  Connection& connection_;
  sqlite3_stmt* stmt_ = nullptr;
  bool borrowed_ = false;  // a Query holds it; the same SQL may not be nested inside itself
};

// A cached statement borrowed from its Connection, reset (and its read snapshot
// released) when the Query goes out of scope.
class Query {
 public:
  explicit Query(Statement& statement);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Statement* operator->() { return &statement_; }
  Statement& operator*() { return statement_; }

 private:
  Statement& statement_;
};

class Connection {
 public:
  enum class Access { ReadOnly, ReadWriteCreate };
  Connection(std::filesystem::path file, Access access);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::filesystem::path& file() const { return file_; }
  sqlite3* handle() const { return db_; }
  bool is_read_only() const;

  // Runs SQL text that returns no rows (one statement or a script).
  void exec(std::string_view sql, std::string_view doing);
  // The cached prepared statement for `sql` (prepared on first use).
  Query query(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  std::int64_t changes() const;

  // Throws the error for SQLite result code `rc` met while `doing` something.
  [[noreturn]] void fail(int rc, std::string_view doing) const;

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting up to the busy
// timeout) so a read-then-write never fails half-way; rolls back unless committed.
class Transaction {
 public:
  Transaction(Connection& connection, std::string_view doing);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  std::string doing_;
  bool open_ = true;
};

}  // namespace aqlm::store::sql
