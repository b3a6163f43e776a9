#pragma once
// A parsed Jinja2 template, rendered with Hugging Face's chat-template environment:
// trim_blocks, lstrip_blocks, loop controls, {% generation %}, the default Undefined (prints
// as "", fails on attribute access), and the globals range, namespace, dict,
// raise_exception and strftime_now.
#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/text/jinja_ast.h"
#include "core/text/jinja_value.h"

namespace aqlm::jinja {

struct RenderOptions {
  // The local time strftime_now formats; empty means the system clock.
  std::function<std::tm()> now;
};

class Template {
 public:
  // Parses `source`; throws Error "<name>: line L, column C: <reason>" when it cannot.
  explicit Template(std::string_view source, std::string name = "template");

  // Renders with the given variables (they shadow the globals). Throws Error
  // "<name>: line L: <reason>" for runtime failures, including raise_exception(message).
  std::string render(const Dict& variables, const RenderOptions& options = {}) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  Body body_;
  std::vector<std::string> undefined_on_entry_;  // names the template itself owns (jinja_scopes.h)
};

}  // namespace aqlm::jinja
