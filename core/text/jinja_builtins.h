#pragma once
// Jinja2's built-in filters, tests, attribute/item lookup and global functions, with the
// semantics of jinja2 3.x in Hugging Face's sandbox (tojson is HF's: ensure_ascii=False).
// Errors are thrown as aqlm::Error without a position; the interpreter adds it.
#include <ctime>
#include <functional>
#include <string>

#include "core/text/jinja_value.h"

namespace aqlm::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& value, const CallArgs& args);
bool apply_test(const std::string& name, const Value& value, const CallArgs& args);

// `object.name`: a method of str/dict, a key of a dict, an attribute of a namespace, else undefined.
Value get_attribute(const Value& object, const std::string& name);
// `object[key]`: index, key or (for a string key) attribute; undefined when absent.
Value get_item(const Value& object, const Value& key);
// `object[start:stop:step]` for lists, tuples and strings (null Values are omitted bounds).
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);
// Calls a function value; throws Error for anything else.
Value call(const Value& callee, const CallArgs& args);
// Iteration as Python does it: list items, dict keys, string characters; undefined is empty.
std::vector<Value> iterate(const Value& value);

// The functions every template sees: range, namespace, dict, raise_exception, strftime_now.
// `now` supplies the local time for strftime_now.
Dict global_functions(std::function<std::tm()> now);

}  // namespace aqlm::jinja
