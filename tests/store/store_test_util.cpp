#include "tests/store/store_test_util.h"

#include <sqlite3.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/store/sqlite.h"

namespace aqlm::store_test {
namespace fs = std::filesystem;

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::vector<std::string> folder_listing(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

struct Raw {
  explicit Raw(const fs::path& file) {
    if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("raw open " + file.string());
  }
  ~Raw() { sqlite3_close(db); }
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK ||
        sqlite3_step(stmt) != SQLITE_ROW) {
      sqlite3_finalize(stmt);
      throw std::runtime_error("raw query '" + sql + "': " + sqlite3_errmsg(db));
    }
    return stmt;
  }
  sqlite3* db = nullptr;
};

}  // namespace

void raw_exec(const fs::path& file, const std::string& sql) {
  Raw raw(file);
  char* error = nullptr;
  if (sqlite3_exec(raw.db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error ? error : "?";
    sqlite3_free(error);
    throw std::runtime_error("raw exec '" + sql + "': " + message);
  }
}

std::int64_t raw_integer(const fs::path& file, const std::string& sql) {
  Raw raw(file);
  sqlite3_stmt* stmt = raw.prepare(sql);
  const std::int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return value;
}

std::string raw_text(const fs::path& file, const std::string& sql) {
  Raw raw(file);
  sqlite3_stmt* stmt = raw.prepare(sql);
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  std::string value = text ? text : "";
  sqlite3_finalize(stmt);
  return value;
}

void keep_wal_on_close(store::sql::Connection& connection) {
  sqlite3_db_config(connection.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
}

}  // namespace aqlm::store_test
