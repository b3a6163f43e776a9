#pragma once
// Parses the tokens of a template into statements, with jinja2's grammar and operator
// precedence. Unknown tags, filters and tests are errors at parse time (as in jinja2),
// each naming the line and column.
#include <string>
#include <vector>

#include "core/text/jinja_ast.h"

namespace aqlm::jinja {

Body parse(const std::vector<Token>& tokens, const std::string& template_name);

}  // namespace aqlm::jinja
