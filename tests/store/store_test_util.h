#pragma once
// Helpers for the run database tests: file bytes, folder listings, and direct SQLite
// access that bypasses RunDatabase (to forge versions, foreign files, or look inside).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace aqlm::store::sql {
class Connection;
}

namespace aqlm::store_test {

std::string read_bytes(const std::filesystem::path& file);
void write_bytes(const std::filesystem::path& file, const std::string& bytes);
std::vector<std::string> folder_listing(const std::filesystem::path& folder);  // sorted names

// Plain sqlite3 connections of their own, closed before returning.
void raw_exec(const std::filesystem::path& file, const std::string& sql);
std::int64_t raw_integer(const std::filesystem::path& file, const std::string& sql);
std::string raw_text(const std::filesystem::path& file, const std::string& sql);

// Leaves the write-ahead log un-checkpointed when `connection` closes, as after a crash.
void keep_wal_on_close(store::sql::Connection& connection);

}  // namespace aqlm::store_test
