#pragma once
// jinja2 decides at compile time which names each frame (the template, a loop body, a macro,
// a block assignment ...) owns: a name whose first mention in a frame is an assignment (not
// inside an if) belongs to that frame from its start and is undefined until assigned, even
// where an outer variable of that name exists: with `{% for %}{{ n }}{% endfor %}{% set n = 1 %}`
// the loop prints nothing although `n` was passed in. This pass reproduces that analysis
// (jinja2/idtracking.py) and records the names in Stmt::undefined_on_entry.
#include <string>
#include <vector>

#include "core/text/jinja_ast.h"

namespace aqlm::jinja {

// Annotates every frame under `root`; returns the names undefined on entry to the template itself.
std::vector<std::string> analyze_scopes(Body& root);

}  // namespace aqlm::jinja
