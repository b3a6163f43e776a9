#pragma once
// Error types of the run database that callers may want to tell apart from aqlm::Error.
#include <filesystem>
#include <string>

#include "core/common/error.h"

namespace aqlm::store {

// The file is not a SQLite database, or SQLite found it damaged (integrity check,
// SQLITE_CORRUPT / SQLITE_NOTADB). The studio catches this one and offers
// RunDatabase::move_aside_and_recreate(file), which keeps the old bytes.
class CorruptDatabaseError : public Error {
 public:
  CorruptDatabaseError(std::filesystem::path file, const std::string& message)
      : Error(message), file_(std::move(file)) {}
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

}  // namespace aqlm::store
