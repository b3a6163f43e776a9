// Attribute and item lookup (jinja2's getattr/getitem rules: a missing attribute or index is
// undefined rather than an error), slicing, iteration, calls, the str and dict methods a
// sandboxed template may use, and the global functions.
#include <clocale>
#include <locale.h>

#include "core/text/jinja_args.h"
#include "core/text/jinja_builtins.h"
#include "core/text/jinja_text.h"

namespace aqlm::jinja {
namespace {

Value missing_attribute(const Value& object, const std::string& name) {
  return Value::undefined(str("'", object.type_name(), " object' has no attribute '", name, "'"));
}

std::optional<std::string> optional_string(const std::string& fn, const Value& v) {
  if (v.is_none()) return std::nullopt;
  return string_argument(fn, v);
}

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  for (const auto& p : parts) items.emplace_back(p);
  return Value(std::move(items));
}

// Python's str.startswith/endswith: a prefix or a tuple of prefixes.
bool affix_matches(const std::string& fn, const std::string& s, const Value& affix, bool at_start) {
  auto one = [&](const std::string& a) {
    return a.size() <= s.size() && (at_start ? s.compare(0, a.size(), a) == 0 : s.compare(s.size() - a.size(), a.size(), a) == 0);
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list())
      if (one(string_argument(fn, a))) return true;
    return false;
  }
  return one(string_argument(fn, affix));
}

Value string_method(const std::string& s, const std::string& name) {
  auto method = [&](auto body) {
    return Value::function("str." + name, [s, name, body](const CallArgs& args) { return body(s, "str." + name, args); });
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"chars"}});
      const bool left = fn != "str.rstrip", right = fn != "str.lstrip";
      return Value(text::strip(self, optional_string(fn, a[0]), left, right));
    });
  }
  if (name == "split" || name == "rsplit") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"sep"}, {"maxsplit", Value(-1)}});
      const auto sep = optional_string(fn, a[0]);
      if (sep && sep->empty()) fail(fn, "(): empty separator");
      return string_list(text::split(self, sep, int_argument(fn, a[1]), fn == "str.rsplit"));
    });
  }
  if (name == "splitlines") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      bind(fn, args, {});
      return string_list(text::split_lines(self));
    });
  }
  if (name == "startswith" || name == "endswith") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"prefix", Value::none(), true}});
      return Value(affix_matches(fn, self, a[0], fn == "str.startswith"));
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      bind(fn, args, {});
      if (fn == "str.upper") return Value(text::upper(self));
      if (fn == "str.lower") return Value(text::lower(self));
      if (fn == "str.title") return Value(text::title(self));
      return Value(text::capitalize(self));
    });
  }
  if (name == "replace") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"old", Value::none(), true}, {"new", Value::none(), true}, {"count", Value(-1)}});
      return Value(text::replace(self, string_argument(fn, a[0]), string_argument(fn, a[1]), int_argument(fn, a[2])));
    });
  }
  if (name == "find" || name == "count") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"sub", Value::none(), true}});
      const std::string& sub = string_argument(fn, a[0]);
      return Value(fn == "str.find" ? text::find(self, sub) : text::count(self, sub));
    });
  }
  if (name == "join") {
    return method([](const std::string& self, const std::string& fn, const CallArgs& args) {
      const auto a = bind(fn, args, {{"iterable", Value::none(), true}});
      std::string out;
      bool first = true;
      for (const Value& item : iterate(a[0])) {
        if (!first) out += self;
        first = false;
        out += string_argument(fn, item);
      }
      return Value(std::move(out));
    });
  }
  return Value();
}

Value dict_method(const Value& dict, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::function("dict." + name, [dict, name](const CallArgs& args) {
      bind("dict." + name, args, {});
      std::vector<Value> out;
      for (const auto& [k, v] : dict.as_dict().entries()) {
        if (name == "items") out.emplace_back(std::vector<Value>{Value(k), v}, true);
        else out.push_back(name == "keys" ? Value(k) : v);
      }
      return Value(std::move(out));
    });
  }
  if (name == "get") {
    return Value::function("dict.get", [dict](const CallArgs& args) {
      const auto a = bind("dict.get", args, {{"key", Value::none(), true}, {"default"}});
      const Value* found = a[0].is_string() ? dict.as_dict().find(a[0].as_string()) : nullptr;
      return found ? *found : a[1];
    });
  }
  return Value();
}

// Python's slice.indices(length) then the selected positions.
std::vector<size_t> slice_positions(size_t length, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto index = [](const Value& v) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    return int_argument("slice", v);
  };
  const auto n = static_cast<int64_t>(length);
  const int64_t step = index(step_v).value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  auto adjust = [&](std::optional<int64_t> v, int64_t absent) {
    if (!v) return absent;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(index(start_v), step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(index(stop_v), step < 0 ? -1 : n);
  std::vector<size_t> positions;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) positions.push_back(static_cast<size_t>(i));
  return positions;
}

}  // namespace

Value get_attribute(const Value& object, const std::string& name) {
  switch (object.type()) {
    case Value::Type::Dict: {
      if (Value m = dict_method(object, name); !m.is_undefined()) return m;
      if (const Value* v = object.as_dict().find(name)) return *v;
      return missing_attribute(object, name);
    }
    case Value::Type::String: {
      if (Value m = string_method(object.as_string(), name); !m.is_undefined()) return m;
      return missing_attribute(object, name);
    }
    case Value::Type::Namespace: {
      if (const Value* v = object.as_namespace().attributes.find(name)) return *v;
      return missing_attribute(object, name);
    }
    default: return missing_attribute(object, name);
  }
}

Value get_item(const Value& object, const Value& key) {
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t n = object.is_list() ? static_cast<int64_t>(object.as_list().size())
                                       : static_cast<int64_t>(text::length(object.as_string()));
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined(str(object.type_name(), " object has no element ", key.as_int()));
    if (object.is_list()) return object.as_list()[static_cast<size_t>(i)];
    return Value(text::encode(text::decode(object.as_string())[static_cast<size_t>(i)]));
  }
  if (key.is_string()) {
    if (object.is_dict()) {
      if (const Value* v = object.as_dict().find(key.as_string())) return *v;
    } else if (object.is_namespace()) {
      if (const Value* v = object.as_namespace().attributes.find(key.as_string())) return *v;
    }
    return get_attribute(object, key.as_string());
  }
  return Value::undefined(str("'", object.type_name(), " object' has no element ", repr(key)));
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_list()) {
    std::vector<Value> out;
    for (size_t i : slice_positions(object.as_list().size(), start, stop, step)) out.push_back(object.as_list()[i]);
    return Value(std::move(out), object.is_tuple());
  }
  if (object.is_string()) {
    const std::vector<char32_t> cps = text::decode(object.as_string());
    std::vector<char32_t> out;
    for (size_t i : slice_positions(cps.size(), start, stop, step)) out.push_back(cps[i]);
    return Value(text::encode(out));
  }
  fail("'", object.type_name(), "' object is not subscriptable");
}

Value call(const Value& callee, const CallArgs& args) {
  if (!callee.is_function()) fail("'", callee.type_name(), "' object is not callable");
  return callee.as_function().call(args);
}

std::vector<Value> iterate(const Value& value) {
  switch (value.type()) {
    case Value::Type::Undefined: return {};
    case Value::Type::List: return value.as_list();
    case Value::Type::Dict: {
      std::vector<Value> keys;
      for (const auto& entry : value.as_dict().entries()) keys.emplace_back(entry.first);
      return keys;
    }
    case Value::Type::String: {
      std::vector<Value> chars;
      for (char32_t c : text::decode(value.as_string())) chars.emplace_back(text::encode(c));
      return chars;
    }
    default: fail("'", value.type_name(), "' object is not iterable");
  }
}

namespace {

// dict(mapping?, **kwargs) and namespace(mapping?, **kwargs) take the same arguments.
Dict mapping_arguments(const std::string& fn, const CallArgs& args) {
  if (args.positional.size() > 1) fail(fn, "() expected at most 1 positional argument");
  Dict out;
  if (!args.positional.empty()) {
    if (!args.positional[0].is_dict()) fail(fn, "() expects a mapping, not ", args.positional[0].type_name());
    out = args.positional[0].as_dict();
  }
  for (const auto& [k, v] : args.keyword) out.set(k, v);
  return out;
}

}  // namespace

Dict global_functions(std::function<std::tm()> now) {
  Dict globals;
  globals.set("range", Value::function("range", [](const CallArgs& args) {
    if (!args.keyword.empty() || args.positional.empty() || args.positional.size() > 3)
      fail("range() takes 1 to 3 integer arguments");
    int64_t start = 0, stop, step = 1;
    if (args.positional.size() == 1) {
      stop = int_argument("range", args.positional[0]);
    } else {
      start = int_argument("range", args.positional[0]);
      stop = int_argument("range", args.positional[1]);
      if (args.positional.size() == 3) step = int_argument("range", args.positional[2]);
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    constexpr int64_t kMaxRange = 100000;  // jinja2's sandbox limit
    std::vector<Value> items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (static_cast<int64_t>(items.size()) >= kMaxRange) fail("range() is limited to ", kMaxRange, " items");
      items.emplace_back(i);
    }
    return Value(std::move(items));
  }));
  globals.set("dict", Value::function("dict", [](const CallArgs& args) { return Value(mapping_arguments("dict", args)); }));
  globals.set("namespace", Value::function("namespace", [](const CallArgs& args) {
    return Value::new_namespace(mapping_arguments("namespace", args));
  }));
  globals.set("raise_exception", Value::function("raise_exception", [](const CallArgs& args) -> Value {
    const auto a = bind("raise_exception", args, {{"message", Value::none(), true}});
    throw Error(to_str(a[0]));
  }));
  globals.set("strftime_now", Value::function("strftime_now", [now](const CallArgs& args) {
    const auto a = bind("strftime_now", args, {{"format", Value::none(), true}});
    const std::string& format = string_argument("strftime_now", a[0]);
    const std::tm time = now();
    // Python formats in the C locale unless told otherwise; the studio may have set another.
    static locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
    std::string buffer(256 + format.size() * 8, '\0');
    const size_t n = strftime_l(buffer.data(), buffer.size(), format.c_str(), &time, c_locale);
    if (n == 0 && !format.empty()) fail("strftime_now(): the formatted date is too long or the format is invalid");
    buffer.resize(n);
    return Value(std::move(buffer));
  }));
  return globals;
}

}  // namespace aqlm::jinja
