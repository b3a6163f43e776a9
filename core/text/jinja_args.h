#pragma once
// Binds the arguments of a filter, test, method or global like a Python signature:
// positional first, then keywords by name; absent parameters take their default.
#include <initializer_list>
#include <string>
#include <vector>

#include "core/common/error.h"
#include "core/text/jinja_value.h"

namespace aqlm::jinja {

struct Param {
  const char* name;
  Value fallback = Value::none();
  bool required = false;
};

inline std::vector<Value> bind(const std::string& function, const CallArgs& args, std::initializer_list<Param> params) {
  const std::vector<Param> spec(params);
  if (args.positional.size() > spec.size())
    fail(function, "() takes at most ", spec.size(), " argument(s) (", args.positional.size(), " given)");
  std::vector<Value> bound(spec.size());
  std::vector<bool> given(spec.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    bound[i] = args.positional[i];
    given[i] = true;
  }
  for (const auto& [key, value] : args.keyword) {
    size_t i = 0;
    while (i < spec.size() && key != spec[i].name) ++i;
    if (i == spec.size()) fail(function, "() got an unexpected keyword argument '", key, "'");
    if (given[i]) fail(function, "() got multiple values for argument '", key, "'");
    bound[i] = value;
    given[i] = true;
  }
  for (size_t i = 0; i < spec.size(); ++i) {
    if (given[i]) continue;
    if (spec[i].required) fail(function, "() missing required argument '", spec[i].name, "'");
    bound[i] = spec[i].fallback;
  }
  return bound;
}

// An int-valued argument (bool counts, as in Python); throws Error naming the function otherwise.
inline int64_t int_argument(const std::string& function, const Value& v) {
  if (!v.is_int() && !v.is_bool()) fail(function, "(): expected an integer, got ", v.type_name());
  return v.as_int();
}

inline const std::string& string_argument(const std::string& function, const Value& v) {
  if (!v.is_string()) fail(function, "(): expected a string, got ", v.type_name());
  return v.as_string();
}

}  // namespace aqlm::jinja
