#pragma once
// A parsed Jinja2 template, rendered with Hugging Face's chat-template environment:
// trim_blocks, lstrip_blocks, loop controls, {% generation %}, the default Undefined (prints
// as "", fails on attribute access), and the globals range, namespace, dict,
// raise_exception and strftime_now.
//
// Not supported (a clear Error at parse or render time): {% call %}, {% include %},
// {% extends %}, {% block %}, {% with %}, recursive loops, *args/**kwargs, macro
// caller/varargs, `{% set x | filter %}`, str % formatting, str.format, and the filters
// batch, center, format, groupby, slice, truncate, wordwrap, urlize, xmlattr.
// Known differences from jinja2, none reachable by a template that only renders text:
// filters jinja2 writes as generators (map, select, reverse, unique ...) and dict views
// (items(), keys()) are lists here, so printing one shows a list instead of
// "<generator ...>"; range() prints as a list; dict keys must be strings; integers are 64-bit.
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
