#pragma once
// The value type of the chat-template interpreter: the handful of Python types that Jinja2
// templates see (undefined, None, bool, int, float, str, list, tuple, dict, namespace,
// callable), with Python's semantics for printing, equality, ordering and truth.
// Lists, tuples and dicts are immutable once built (Hugging Face renders templates in an
// immutable sandbox), so values share them; a namespace is the one mutable container.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace aqlm::jinja {

class Value;

// Insertion-ordered string-keyed mapping, as a Python dict built from JSON.
class Dict {
 public:
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);  // replaces or appends
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
};

// Arguments of a call: positional then keyword, as written.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Function {
  std::string name;
  std::function<Value(const CallArgs&)> call;
};

struct Undefined {
  std::string reason;  // what makes it undefined, for the error if it is used: "'x' is undefined"
};
struct None {};
struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};
struct NamespaceData {
  Dict attributes;
};

class Value {
 public:
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };

  Value() : data_(Undefined{}) {}
  Value(None) : data_(None{}) {}
  Value(bool b) : data_(b) {}
  Value(int i) : data_(int64_t{i}) {}
  Value(int64_t i) : data_(i) {}
  Value(double d) : data_(d) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::vector<Value> items, bool is_tuple = false);
  Value(Dict dict);

  static Value undefined(std::string reason) { return Value(Undefined{std::move(reason)}); }
  static Value none() { return Value(None{}); }
  static Value function(std::string name, std::function<Value(const CallArgs&)> call);
  static Value new_namespace(Dict attributes);

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_undefined() const { return type() == Type::Undefined; }
  bool is_none() const { return type() == Type::None; }
  bool is_bool() const { return type() == Type::Bool; }
  bool is_int() const { return type() == Type::Int; }
  bool is_float() const { return type() == Type::Float; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return type() == Type::String; }
  bool is_list() const { return type() == Type::List; }  // lists and tuples
  bool is_tuple() const { return is_list() && std::get<std::shared_ptr<const ListData>>(data_)->is_tuple; }
  bool is_dict() const { return type() == Type::Dict; }
  bool is_namespace() const { return type() == Type::Namespace; }
  bool is_function() const { return type() == Type::Function; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;   // bool or int
  double as_double() const; // any number
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const std::vector<Value>& as_list() const { return std::get<std::shared_ptr<const ListData>>(data_)->items; }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(data_); }
  NamespaceData& as_namespace() const { return *std::get<std::shared_ptr<NamespaceData>>(data_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(data_); }
  const std::string& undefined_reason() const { return std::get<Undefined>(data_).reason; }

  // Python type name for messages: "str", "int", "list", "dict", "NoneType", "Undefined" ...
  std::string type_name() const;
  // Identity of shared containers (for `is sameas`).
  const void* identity() const;

 private:
  explicit Value(Undefined u) : data_(std::move(u)) {}
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<const ListData>,
               std::shared_ptr<const Dict>, std::shared_ptr<NamespaceData>, std::shared_ptr<const Function>>
      data_;
};

// Python's bool(value).
bool truthy(const Value& value);
// Python's str(value) as Jinja prints it; undefined prints as "".
std::string to_str(const Value& value);
// Python's repr(value), used inside printed containers.
std::string repr(const Value& value);
// Python's float.__repr__: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string format_float(double value);
// Python's == (numbers compare across int/float/bool; a list never equals a tuple).
bool equals(const Value& a, const Value& b);
// Python's <; throws Error for values Python cannot order ("'<' not supported ...").
bool less_than(const Value& a, const Value& b);

struct JsonOptions {
  bool ensure_ascii = false;
  std::string indent;      // used when `pretty`
  bool pretty = false;     // json.dumps(indent=...) was given
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Python's json.dumps with the given options; throws Error for values JSON cannot hold.
std::string to_json(const Value& value, const JsonOptions& options);

// JSON document -> Value (objects keep their key order).
Value from_json(const nlohmann::ordered_json& json);

}  // namespace aqlm::jinja
