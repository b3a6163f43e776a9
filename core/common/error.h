#pragma once
// One error type for the whole engine: a one-line, user-facing message that says
// which file or object, what went wrong and why. The CLI prints it and exits
// non-zero; the studio shows it in a dialog.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace aqlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: str("layer ", i, " has ", n, " rows").
template <typename... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(str(std::forward<Args>(args)...));
}

// Checks a condition that depends on user input (files, options); never for programming errors.
#define AQLM_CHECK(cond, ...)             \
  do {                                    \
    if (!(cond)) ::aqlm::fail(__VA_ARGS__); \
  } while (0)

}  // namespace aqlm
