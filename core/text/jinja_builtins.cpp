// jinja2's built-in filters and tests (the ones chat templates use), as jinja2 3.1 defines
// them, with Hugging Face's tojson. Filters that jinja2 writes as generators (map, select,
// unique, ...) return lists here; templates only iterate or `|list` them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "core/text/jinja_args.h"
#include "core/text/jinja_builtins.h"
#include "core/text/jinja_text.h"

namespace aqlm::jinja {
namespace {

using FilterFn = Value (*)(const Value&, const CallArgs&);
using TestFn = bool (*)(const Value&, const CallArgs&);

// String filters see an undefined value as "" (jinja2's soft_str).
std::string as_text(const Value& v) { return to_str(v); }

const Value& number_argument(const std::string& fn, const Value& v) {
  if (v.is_undefined()) throw Error(v.undefined_reason());
  if (!v.is_number()) fail(fn, "(): expected a number, got ", v.type_name());
  return v;
}

// jinja2's make_attrgetter: "a.b.0" looks up each part with getitem (digits as indices).
Value lookup_path(const Value& item, const std::string& path) {
  Value current = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (current.is_undefined()) throw Error(current.undefined_reason());
    current = get_item(current, digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// Sort key with jinja2's ignore_case: strings compare lower-cased unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return (!case_sensitive && v.is_string()) ? Value(text::lower(v.as_string())) : v;
}

std::vector<Value> keyed(const std::vector<Value>& items, const Value& attribute, bool case_sensitive) {
  std::vector<Value> keys;
  for (const Value& item : items)
    keys.push_back(sort_key(attribute.is_none() ? item : lookup_path(item, string_argument("attribute", attribute)),
                            case_sensitive));
  return keys;
}

CallArgs rest_arguments(const CallArgs& args, size_t skip) {
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + static_cast<long>(std::min(skip, args.positional.size())),
                         args.positional.end());
  rest.keyword = args.keyword;
  return rest;
}

// ---- filters ----

Value f_abs(const Value& v, const CallArgs& args) {
  bind("abs", args, {});
  const Value& x = number_argument("abs", v);
  if (x.is_float()) return Value(std::fabs(x.as_double()));
  return Value(x.as_int() < 0 ? -x.as_int() : x.as_int());
}

Value f_attr(const Value& v, const CallArgs& args) {
  const auto a = bind("attr", args, {{"name", Value::none(), true}});
  if (v.is_undefined()) throw Error(v.undefined_reason());
  return get_attribute(v, string_argument("attr", a[0]));
}

Value f_capitalize(const Value& v, const CallArgs& args) {
  bind("capitalize", args, {});
  return Value(text::capitalize(as_text(v)));
}

Value f_default(const Value& v, const CallArgs& args) {
  const auto a = bind("default", args, {{"default_value", Value("")}, {"boolean", Value(false)}});
  if (v.is_undefined() || (truthy(a[1]) && !truthy(v))) return a[0];
  return v;
}

Value f_dictsort(const Value& v, const CallArgs& args) {
  const auto a = bind("dictsort", args, {{"case_sensitive", Value(false)}, {"by", Value("key")}, {"reverse", Value(false)}});
  if (v.is_undefined()) throw Error(v.undefined_reason());
  if (!v.is_dict()) fail("dictsort(): expected a mapping, got ", v.type_name());
  const std::string& by = string_argument("dictsort", a[1]);
  if (by != "key" && by != "value") fail("dictsort(): you can only sort by either 'key' or 'value'");
  std::vector<Value> pairs;
  for (const auto& [k, item] : v.as_dict().entries()) pairs.emplace_back(std::vector<Value>{Value(k), item}, true);
  const size_t part = by == "key" ? 0 : 1;
  const bool reverse = truthy(a[2]), case_sensitive = truthy(a[0]);
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key(x.as_list()[part], case_sensitive), ky = sort_key(y.as_list()[part], case_sensitive);
    return reverse ? less_than(ky, kx) : less_than(kx, ky);
  });
  return Value(std::move(pairs));
}

Value f_escape(const Value& v, const CallArgs& args) {
  bind("escape", args, {});
  std::string out;
  for (char c : as_text(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return Value(std::move(out));
}

Value f_first(const Value& v, const CallArgs& args) {
  bind("first", args, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(const Value& v, const CallArgs& args) {
  bind("last", args, {});
  const std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_float(const Value& v, const CallArgs& args) {
  const auto a = bind("float", args, {{"default", Value(0.0)}});
  if (v.is_undefined()) throw Error(v.undefined_reason());
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    if (auto d = text::parse_float(v.as_string())) return Value(*d);
  }
  return a[0];
}

Value f_indent(const Value& v, const CallArgs& args) {
  const auto a = bind("indent", args, {{"width", Value(4)}, {"first", Value(false)}, {"blank", Value(false)}});
  if (v.is_undefined()) throw Error(v.undefined_reason());
  if (!v.is_string()) fail("indent(): expected a string, got ", v.type_name());  // jinja2 appends "\n" to it
  const std::string indentation =
      a[0].is_string() ? a[0].as_string() : std::string(static_cast<size_t>(std::max<int64_t>(0, int_argument("indent", a[0]))), ' ');
  const std::vector<std::string> lines = text::split_lines(as_text(v) + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (truthy(a[2]) || !lines[i].empty()) out += indentation;
    }
    out += lines[i];
  }
  if (truthy(a[1])) out = indentation + out;
  return Value(std::move(out));
}

Value f_int(const Value& v, const CallArgs& args) {
  const auto a = bind("int", args, {{"default", Value(0)}, {"base", Value(10)}});
  if (v.is_undefined()) throw Error(v.undefined_reason());
  if (v.is_bool() || v.is_int()) return Value(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double())) return a[0];
    return Value(static_cast<int64_t>(std::trunc(v.as_double())));
  }
  if (v.is_string()) {
    if (auto i = text::parse_int(v.as_string(), static_cast<int>(int_argument("int", a[1])))) return Value(*i);
    if (auto d = text::parse_float(v.as_string()); d && std::isfinite(*d)) return Value(static_cast<int64_t>(std::trunc(*d)));
  }
  return a[0];
}

Value f_items(const Value& v, const CallArgs& args) {
  bind("items", args, {});
  if (v.is_undefined()) return Value(std::vector<Value>{});
  if (!v.is_dict()) fail("items(): can only get item pairs from a mapping, not ", v.type_name());
  return call(get_attribute(v, "items"), {});
}

Value f_join(const Value& v, const CallArgs& args) {
  const auto a = bind("join", args, {{"d", Value("")}, {"attribute"}});
  const std::string separator = as_text(a[0]);
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += separator;
    first = false;
    out += to_str(a[1].is_none() ? item : lookup_path(item, string_argument("join", a[1])));
  }
  return Value(std::move(out));
}

Value f_length(const Value& v, const CallArgs& args) {
  bind("length", args, {});
  switch (v.type()) {
    case Value::Type::Undefined: return Value(0);
    case Value::Type::String: return Value(static_cast<int64_t>(text::length(v.as_string())));
    case Value::Type::List: return Value(static_cast<int64_t>(v.as_list().size()));
    case Value::Type::Dict: return Value(static_cast<int64_t>(v.as_dict().size()));
    default: fail("object of type '", v.type_name(), "' has no len()");
  }
}

Value f_list(const Value& v, const CallArgs& args) {
  bind("list", args, {});
  return Value(iterate(v));
}

Value f_lower(const Value& v, const CallArgs& args) {
  bind("lower", args, {});
  return Value(text::lower(as_text(v)));
}

Value f_upper(const Value& v, const CallArgs& args) {
  bind("upper", args, {});
  return Value(text::upper(as_text(v)));
}

Value f_map(const Value& v, const CallArgs& args) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  Value fallback;
  bool has_default = false;
  for (const auto& [key, value] : args.keyword) {
    if (key == "attribute") attribute = &value;
    if (key == "default") {
      fallback = value;
      has_default = true;
    }
  }
  if (!truthy(v)) return Value(std::vector<Value>{});  // jinja2's map and select skip a falsy value: `if value:`
  if (attribute) {
    for (const Value& item : iterate(v)) {
      Value mapped = lookup_path(item, string_argument("map", *attribute));
      out.push_back(mapped.is_undefined() && has_default ? fallback : mapped);
    }
    return Value(std::move(out));
  }
  if (args.positional.empty()) fail("map(): expected a filter name or attribute=");
  const std::string& filter = string_argument("map", args.positional[0]);
  if (!has_filter(filter)) fail("map(): unknown filter '", filter, "'");
  const CallArgs rest = rest_arguments(args, 1);
  for (const Value& item : iterate(v)) out.push_back(apply_filter(filter, item, rest));
  return Value(std::move(out));
}

Value min_max(const char* fn, const Value& v, const CallArgs& args, bool want_max) {
  const auto a = bind(fn, args, {{"case_sensitive", Value(false)}, {"attribute"}});
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  const std::vector<Value> keys = keyed(items, a[1], truthy(a[0]));
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i)
    if (want_max ? less_than(keys[best], keys[i]) : less_than(keys[i], keys[best])) best = i;
  return items[best];
}

Value f_max(const Value& v, const CallArgs& args) { return min_max("max", v, args, true); }
Value f_min(const Value& v, const CallArgs& args) { return min_max("min", v, args, false); }

// select/reject(test?, args...) and selectattr/rejectattr(attribute, test?, args...).
Value select_items(const char* fn, const Value& v, const CallArgs& args, bool by_attribute, bool keep_when) {
  if (!truthy(v)) return Value(std::vector<Value>{});  // jinja2: `if value:` before anything else
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.positional.empty()) fail(fn, "(): missing the attribute name");
    attribute = string_argument(fn, args.positional[next++]);
  }
  std::optional<std::string> test;
  if (next < args.positional.size()) {
    test = string_argument(fn, args.positional[next++]);
    if (!has_test(*test)) fail(fn, "(): unknown test '", *test, "'");
  }
  const CallArgs rest = rest_arguments(args, next);
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value subject = by_attribute ? lookup_path(item, attribute) : item;
    const bool passed = test ? apply_test(*test, subject, rest) : truthy(subject);
    if (passed == keep_when) out.push_back(item);
  }
  return Value(std::move(out));
}

Value f_select(const Value& v, const CallArgs& a) { return select_items("select", v, a, false, true); }
Value f_reject(const Value& v, const CallArgs& a) { return select_items("reject", v, a, false, false); }
Value f_selectattr(const Value& v, const CallArgs& a) { return select_items("selectattr", v, a, true, true); }
Value f_rejectattr(const Value& v, const CallArgs& a) { return select_items("rejectattr", v, a, true, false); }

Value f_replace(const Value& v, const CallArgs& args) {
  const auto a = bind("replace", args, {{"old", Value::none(), true}, {"new", Value::none(), true}, {"count"}});
  const int64_t count = a[2].is_none() ? -1 : int_argument("replace", a[2]);
  return Value(text::replace(as_text(v), as_text(a[0]), as_text(a[1]), count));
}

Value f_reverse(const Value& v, const CallArgs& args) {
  bind("reverse", args, {});
  if (v.is_string()) {
    std::vector<char32_t> cps = text::decode(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value(text::encode(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value(std::move(items));
}

Value f_round(const Value& v, const CallArgs& args) {
  const auto a = bind("round", args, {{"precision", Value(0)}, {"method", Value("common")}});
  const Value& x = number_argument("round", v);
  const int64_t precision = int_argument("round", a[0]);
  const std::string& method = string_argument("round", a[1]);
  if (method != "common" && method != "ceil" && method != "floor")
    fail("round(): method must be common, ceil or floor");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "ceil") return Value(std::ceil(x.as_double() * scale) / scale);
  if (method == "floor") return Value(std::floor(x.as_double() * scale) / scale);
  if (!x.is_float()) return Value(x.as_int());  // Python's round(int, n) keeps the int
  const double d = x.as_double();
  if (!std::isfinite(d) || precision > 300) return Value(d);
  if (precision >= 0) {
    // printf rounds the exact binary value half-to-even, as CPython's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), d);
    return Value(std::strtod(buf, nullptr));
  }
  return Value(std::nearbyint(d / scale) * scale);
}

Value f_safe(const Value& v, const CallArgs& args) {
  bind("safe", args, {});
  return Value(as_text(v));
}

Value f_sort(const Value& v, const CallArgs& args) {
  const auto a = bind("sort", args, {{"reverse", Value(false)}, {"case_sensitive", Value(false)}, {"attribute"}});
  std::vector<Value> items = iterate(v);
  const std::vector<Value> keys = keyed(items, a[2], truthy(a[1]));
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const bool reverse = truthy(a[0]);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return reverse ? less_than(keys[y], keys[x]) : less_than(keys[x], keys[y]);
  });
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value(std::move(out));
}

Value f_string(const Value& v, const CallArgs& args) {
  bind("string", args, {});
  return Value(to_str(v));
}

Value f_sum(const Value& v, const CallArgs& args) {
  const auto a = bind("sum", args, {{"attribute"}, {"start", Value(0)}});
  Value total = a[1];
  for (const Value& item : iterate(v)) {
    const Value x = a[0].is_none() ? item : lookup_path(item, string_argument("sum", a[0]));
    number_argument("sum", x);
    number_argument("sum", total);
    total = (x.is_float() || total.is_float()) ? Value(total.as_double() + x.as_double()) : Value(total.as_int() + x.as_int());
  }
  return total;
}

Value f_title(const Value& v, const CallArgs& args) {
  bind("title", args, {});
  return Value(text::jinja_title(as_text(v)));
}

Value f_tojson(const Value& v, const CallArgs& args) {
  // Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
  const auto a = bind("tojson", args, {{"ensure_ascii", Value(false)}, {"indent"}, {"separators"}, {"sort_keys", Value(false)}});
  JsonOptions o;
  o.ensure_ascii = truthy(a[0]);
  if (!a[1].is_none()) {
    o.pretty = true;
    o.indent = a[1].is_string() ? a[1].as_string()
                                : std::string(static_cast<size_t>(std::max<int64_t>(0, int_argument("tojson", a[1]))), ' ');
    o.item_separator = ",";
  }
  if (!a[2].is_none()) {
    if (!a[2].is_list() || a[2].as_list().size() != 2) fail("tojson(): separators must be a pair of strings");
    o.item_separator = string_argument("tojson", a[2].as_list()[0]);
    o.key_separator = string_argument("tojson", a[2].as_list()[1]);
  }
  o.sort_keys = truthy(a[3]);
  return Value(to_json(v, o));
}

Value f_trim(const Value& v, const CallArgs& args) {
  const auto a = bind("trim", args, {{"chars"}});
  std::optional<std::string> chars;
  if (!a[0].is_none()) chars = string_argument("trim", a[0]);
  return Value(text::strip(as_text(v), chars, true, true));
}

Value f_unique(const Value& v, const CallArgs& args) {
  const auto a = bind("unique", args, {{"case_sensitive", Value(false)}, {"attribute"}});
  const std::vector<Value> items = iterate(v);
  const std::vector<Value> keys = keyed(items, a[1], truthy(a[0]));
  std::vector<Value> out, seen;
  for (size_t i = 0; i < items.size(); ++i) {
    if (keys[i].is_list() || keys[i].is_dict() || keys[i].is_namespace())  // Python keeps them in a set
      fail("unique(): unhashable type: '", keys[i].type_name(), "'");
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& k) { return equals(k, keys[i]); })) continue;
    seen.push_back(keys[i]);
    out.push_back(items[i]);
  }
  return Value(std::move(out));
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", f_abs},         {"attr", f_attr},         {"capitalize", f_capitalize}, {"count", f_length},
      {"d", f_default},       {"default", f_default},   {"dictsort", f_dictsort},     {"e", f_escape},
      {"escape", f_escape},   {"first", f_first},       {"float", f_float},           {"indent", f_indent},
      {"int", f_int},         {"items", f_items},       {"join", f_join},             {"last", f_last},
      {"length", f_length},   {"list", f_list},         {"lower", f_lower},           {"map", f_map},
      {"max", f_max},         {"min", f_min},           {"reject", f_reject},         {"rejectattr", f_rejectattr},
      {"replace", f_replace}, {"reverse", f_reverse},   {"round", f_round},           {"safe", f_safe},
      {"select", f_select},   {"selectattr", f_selectattr}, {"sort", f_sort},         {"string", f_string},
      {"sum", f_sum},         {"title", f_title},       {"tojson", f_tojson},         {"trim", f_trim},
      {"unique", f_unique},   {"upper", f_upper},
  };
  return table;
}

// ---- tests ----

const Value& one_argument(const char* test, const CallArgs& args) {
  if (args.positional.size() != 1 || !args.keyword.empty()) fail("test '", test, "' takes exactly one argument");
  return args.positional[0];
}

void no_arguments(const char* test, const CallArgs& args) {
  if (!args.positional.empty() || !args.keyword.empty()) fail("test '", test, "' takes no arguments");
}

#define SIMPLE_TEST(fn, name, expr)                 \
  bool fn(const Value& v, const CallArgs& args) {   \
    no_arguments(name, args);                       \
    return (expr);                                  \
  }

SIMPLE_TEST(t_defined, "defined", !v.is_undefined())
SIMPLE_TEST(t_undefined, "undefined", v.is_undefined())
SIMPLE_TEST(t_none, "none", v.is_none())
SIMPLE_TEST(t_boolean, "boolean", v.is_bool())
SIMPLE_TEST(t_true, "true", v.is_bool() && v.as_bool())
SIMPLE_TEST(t_false, "false", v.is_bool() && !v.as_bool())
SIMPLE_TEST(t_integer, "integer", v.is_int())
SIMPLE_TEST(t_float, "float", v.is_float())
SIMPLE_TEST(t_number, "number", v.is_number())
SIMPLE_TEST(t_string, "string", v.is_string())
SIMPLE_TEST(t_mapping, "mapping", v.is_dict())
// Undefined is iterable and (having a length and __getitem__) a sequence in jinja2.
SIMPLE_TEST(t_iterable, "iterable", v.is_undefined() || v.is_list() || v.is_dict() || v.is_string())
SIMPLE_TEST(t_sequence, "sequence", v.is_undefined() || v.is_list() || v.is_dict() || v.is_string())
SIMPLE_TEST(t_callable, "callable", v.is_function() || v.is_undefined())
SIMPLE_TEST(t_lower, "lower", text::is_lower(as_text(v)))
SIMPLE_TEST(t_upper, "upper", text::is_upper(as_text(v)))
#undef SIMPLE_TEST

// Python's `value % divisor` for the number tests (odd, even, divisibleby accept floats too).
double python_mod(const char* test, const Value& value, const Value& divisor) {
  for (const Value* v : {&value, &divisor}) {
    if (v->is_undefined()) throw Error(v->undefined_reason());
    if (!v->is_number()) fail("test '", test, "' needs a number, got ", v->type_name());
  }
  if (divisor.as_double() == 0.0) fail("integer division or modulo by zero");
  if (!value.is_float() && !divisor.is_float()) {
    int64_t m = value.as_int() % divisor.as_int();
    if (m != 0 && ((m < 0) != (divisor.as_int() < 0))) m += divisor.as_int();
    return static_cast<double>(m);
  }
  double m = std::fmod(value.as_double(), divisor.as_double());
  if (m != 0.0 && ((m < 0) != (divisor.as_double() < 0))) m += divisor.as_double();
  return m;
}

bool t_odd(const Value& v, const CallArgs& args) {
  no_arguments("odd", args);
  return python_mod("odd", v, Value(2)) == 1.0;
}

bool t_even(const Value& v, const CallArgs& args) {
  no_arguments("even", args);
  return python_mod("even", v, Value(2)) == 0.0;
}

bool t_divisibleby(const Value& v, const CallArgs& args) {
  return python_mod("divisibleby", v, one_argument("divisibleby", args)) == 0.0;
}

bool t_eq(const Value& v, const CallArgs& args) { return equals(v, one_argument("eq", args)); }
bool t_ne(const Value& v, const CallArgs& args) { return !equals(v, one_argument("ne", args)); }

const Value& ordered(const Value& v) {
  if (v.is_undefined()) throw Error(v.undefined_reason());
  return v;
}
bool t_lt(const Value& v, const CallArgs& args) { return less_than(ordered(v), ordered(one_argument("lt", args))); }
bool t_le(const Value& v, const CallArgs& args) { return !less_than(ordered(one_argument("le", args)), ordered(v)); }
bool t_gt(const Value& v, const CallArgs& args) { return less_than(ordered(one_argument("gt", args)), ordered(v)); }
bool t_ge(const Value& v, const CallArgs& args) { return !less_than(ordered(v), ordered(one_argument("ge", args))); }

bool t_in(const Value& v, const CallArgs& args) {
  const Value& container = one_argument("in", args);
  if (container.is_string()) {
    if (!v.is_string()) fail("'in <string>' requires string as left operand, not ", v.type_name());
    return container.as_string().find(v.as_string()) != std::string::npos;
  }
  for (const Value& item : iterate(container))
    if (equals(item, v)) return true;
  return false;
}

bool t_sameas(const Value& v, const CallArgs& args) {
  const Value& other = one_argument("sameas", args);
  if (v.type() != other.type()) return false;
  if (v.identity() || other.identity()) return v.identity() == other.identity();
  return equals(v, other);
}

bool t_filter(const Value& v, const CallArgs& args) {
  no_arguments("filter", args);
  return v.is_string() && has_filter(v.as_string());
}

bool t_test(const Value& v, const CallArgs& args);

const std::map<std::string, TestFn>& tests() {
  static const std::map<std::string, TestFn> table = {
      {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined},   {"divisibleby", t_divisibleby},
      {"eq", t_eq},           {"equalto", t_eq},        {"==", t_eq},             {"even", t_even},
      {"false", t_false},     {"filter", t_filter},     {"float", t_float},       {"ge", t_ge},
      {">=", t_ge},           {"gt", t_gt},             {">", t_gt},              {"greaterthan", t_gt},
      {"in", t_in},           {"integer", t_integer},   {"iterable", t_iterable}, {"le", t_le},
      {"<=", t_le},           {"lower", t_lower},       {"lt", t_lt},             {"<", t_lt},
      {"lessthan", t_lt},     {"mapping", t_mapping},   {"ne", t_ne},             {"!=", t_ne},
      {"none", t_none},       {"number", t_number},     {"odd", t_odd},           {"sameas", t_sameas},
      {"sequence", t_sequence}, {"string", t_string},   {"test", t_test},         {"true", t_true},
      {"undefined", t_undefined}, {"upper", t_upper},
  };
  return table;
}

bool t_test(const Value& v, const CallArgs& args) {
  no_arguments("test", args);
  return v.is_string() && tests().count(v.as_string()) != 0;
}

}  // namespace

bool has_filter(const std::string& name) { return filters().count(name) != 0; }
bool has_test(const std::string& name) { return tests().count(name) != 0; }

Value apply_filter(const std::string& name, const Value& value, const CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail("unknown filter '", name, "'");
  return it->second(value, args);
}

bool apply_test(const std::string& name, const Value& value, const CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail("unknown test '", name, "'");
  return it->second(value, args);
}

}  // namespace aqlm::jinja
