// Walks the syntax tree of a template with jinja2's scoping: a for loop gives every
// iteration a fresh child scope (assignments inside do not leak out, which is why templates
// use namespace()), if-blocks share their parent's scope, macros see their defining scope.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <unordered_map>

#include "core/common/error.h"
#include "core/text/jinja_builtins.h"
#include "core/text/jinja_parser.h"
#include "core/text/jinja_scopes.h"
#include "core/text/jinja_template.h"

namespace aqlm::jinja {
namespace {

// A runtime error that already names its template and line.
class PositionedError : public Error {
 public:
  using Error::Error;
};

struct Scope;
using ScopePtr = std::shared_ptr<Scope>;

struct Scope {
  std::unordered_map<std::string, Value> vars;
  ScopePtr parent;

  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};

ScopePtr child_of(const ScopePtr& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

// A new frame: its own names start undefined, hiding outer variables of the same name.
ScopePtr frame_of(const ScopePtr& parent, const std::vector<std::string>& undefined_on_entry) {
  auto s = child_of(parent);
  for (const std::string& name : undefined_on_entry) s->vars[name] = Value::undefined("'" + name + "' is undefined");
  return s;
}

ScopePtr frame_of(const ScopePtr& parent, const Stmt& owner, size_t body) {
  static const std::vector<std::string> none;
  return frame_of(parent, body < owner.undefined_on_entry.size() ? owner.undefined_on_entry[body] : none);
}

// Using an undefined value in an operation is an error carrying why it is undefined.
const Value& defined(const Value& v) {
  if (v.is_undefined()) throw Error(v.undefined_reason());
  return v;
}

[[noreturn]] void unsupported_operands(const std::string& op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

void check_overflow(bool overflowed) {
  if (overflowed) fail("integer overflow: the result does not fit in 64 bits");
}

Value repeat(const Value& sequence, int64_t times) {
  constexpr size_t kMaxBytes = size_t{64} << 20;  // no template needs more; a typo must not exhaust memory
  const size_t unit = sequence.is_string() ? sequence.as_string().size() : sequence.as_list().size() * sizeof(Value);
  if (times > 0 && unit > 0 && static_cast<size_t>(times) > kMaxBytes / unit)
    fail("repetition would produce more than 64 MiB");
  if (sequence.is_string()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += sequence.as_string();
    return Value(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), sequence.as_list().begin(), sequence.as_list().end());
  return Value(std::move(out), sequence.is_tuple());
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  defined(a);
  defined(b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      std::vector<Value> items = a.as_list();
      items.insert(items.end(), b.as_list().begin(), b.as_list().end());
      return Value(std::move(items), a.is_tuple());
    }
    if (a.is_string()) fail("can only concatenate str (not \"", b.type_name(), "\") to str");
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  }
  if (!a.is_number() || !b.is_number()) unsupported_operands(op, a, b);
  const bool integral = !a.is_float() && !b.is_float();
  if (op == "/") {
    if (b.as_double() == 0.0) fail("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (integral) {
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      check_overflow(__builtin_add_overflow(x, y, &r));
      return Value(r);
    }
    if (op == "-") {
      check_overflow(__builtin_sub_overflow(x, y, &r));
      return Value(r);
    }
    if (op == "*") {
      check_overflow(__builtin_mul_overflow(x, y, &r));
      return Value(r);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail("integer division or modulo by zero");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
        q -= 1;
        m += y;
      }
      return Value(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) return Value(std::pow(static_cast<double>(x), static_cast<double>(y)));
      int64_t result = 1;
      for (int64_t i = 0; i < y; ++i) check_overflow(__builtin_mul_overflow(result, x, &result));
      return Value(result);
    }
  }
  const double x = a.as_double(), y = b.as_double();
  if (op == "+") return Value(x + y);
  if (op == "-") return Value(x - y);
  if (op == "*") return Value(x * y);
  if (op == "//" || op == "%") {
    if (y == 0.0) fail("float division by zero");
    // CPython's float_floor_div / float_rem.
    double mod = std::fmod(x, y);
    double div = (x - mod) / y;
    if (mod != 0.0) {
      if ((y < 0) != (mod < 0)) {
        mod += y;
        div -= 1.0;
      }
    } else {
      mod = std::copysign(0.0, y);
    }
    if (op == "%") return Value(mod);
    if (div == 0.0) return Value(std::copysign(0.0, x / y));
    double floor_div = std::floor(div);
    if (div - floor_div > 0.5) floor_div += 1.0;
    return Value(floor_div);
  }
  if (op == "**") return Value(std::pow(x, y));
  fail("unknown operator '", op, "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.type()) {
    case Value::Type::Undefined: return false;
    case Value::Type::String:
      if (!item.is_string())
        fail("'in <string>' requires string as left operand, not ", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Type::List:
      for (const Value& v : container.as_list())
        if (equals(v, item)) return true;
      return false;
    case Value::Type::Dict:
      if (item.is_list() || item.is_dict() || item.is_namespace()) fail("unhashable type: '", item.type_name(), "'");
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: fail("argument of type '", container.type_name(), "' is not iterable");
  }
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  defined(a);
  defined(b);
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return !less_than(b, a);
  return !less_than(a, b);  // >=
}

class Interpreter {
 public:
  explicit Interpreter(const std::string& name) : name_(name) {}

  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& stmt : body) {
      const Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  [[noreturn]] void rethrow_positioned(const Error& e) const {
    std::string reason = e.what();  // one line, even when raise_exception's message has several
    for (char& c : reason)
      if (c == '\n' || c == '\r') c = ' ';
    throw PositionedError(str(name_, ": line ", pos_.line, ": ", reason));
  }

 private:
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    pos_ = s.pos;
    switch (s.kind) {
      case StmtKind::Text: out += s.text; return Flow::Normal;
      case StmtKind::Output: out += to_str(eval(*s.exprs[0], scope)); return Flow::Normal;
      case StmtKind::If:
        for (size_t i = 0; i < s.exprs.size(); ++i)
          if (truthy(eval(*s.exprs[i], scope))) return exec(s.bodies[i], scope, out);
        if (s.bodies.size() > s.exprs.size()) return exec(s.bodies.back(), scope, out);
        return Flow::Normal;
      case StmtKind::For: exec_for(s, scope, out); return Flow::Normal;
      case StmtKind::Set: exec_set(s, scope); return Flow::Normal;
      case StmtKind::Macro: define_macro(s, scope); return Flow::Normal;
      case StmtKind::FilterBlock: {
        std::string body;
        exec(s.bodies[0], frame_of(scope, s, 0), body);
        const Value rendered(std::move(body));
        const Value* saved = block_value_;
        block_value_ = &rendered;
        out += to_str(eval(*s.exprs[0], scope));
        block_value_ = saved;
        return Flow::Normal;
      }
      case StmtKind::Scope: return exec(s.bodies[0], frame_of(scope, s, 0), out);
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  static void bind_targets(Scope& scope, const std::vector<std::string>& names, const Value& value) {
    if (names.size() == 1) {
      scope.vars[names[0]] = value;
      return;
    }
    const std::vector<Value> items = iterate(defined(value));
    if (items.size() != names.size())
      fail(items.size() > names.size() ? "too many" : "not enough", " values to unpack (expected ", names.size(),
           ", got ", items.size(), ")");
    for (size_t i = 0; i < names.size(); ++i) scope.vars[names[i]] = items[i];
  }

  void exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    const Value iterable = eval(*s.exprs[0], scope);
    std::vector<Value> items = iterate(iterable);
    if (s.exprs[1]) {  // {% for x in xs if condition %}
      std::vector<Value> kept;
      for (const Value& item : items) {
        auto filter_scope = child_of(scope);
        bind_targets(*filter_scope, s.names, item);
        if (truthy(eval(*s.exprs[1], filter_scope))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    // jinja2 runs the else block unless some iteration reached the end of the body: an empty
    // loop, and also (a quirk of its code generation) one whose iterations all ended in
    // break or continue.
    bool an_iteration_completed = false;
    for (int64_t i = 0; i < n; ++i) {
      auto iteration = frame_of(scope, s, 0);
      bind_targets(*iteration, s.names, items[i]);
      Dict loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("depth", Value(1));
      loop.set("depth0", Value(0));
      loop.set("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
      loop.set("cycle", Value::function("loop.cycle", [i](const CallArgs& args) {
                 if (args.positional.empty()) fail("loop.cycle() needs at least one value");
                 return args.positional[static_cast<size_t>(i) % args.positional.size()];
               }));
      iteration->vars["loop"] = Value(std::move(loop));
      const Flow flow = exec(s.bodies[0], iteration, out);
      if (flow == Flow::Break) break;
      an_iteration_completed |= flow == Flow::Normal;
    }
    if (!an_iteration_completed) exec(s.bodies[1], frame_of(scope, s, 1), out);
  }

  void exec_set(const Stmt& s, const ScopePtr& scope) {
    Value value;
    if (s.exprs.empty()) {
      std::string body;
      exec(s.bodies[0], frame_of(scope, s, 0), body);
      value = Value(std::move(body));
    } else {
      value = eval(*s.exprs[0], scope);
    }
    if (s.attribute.empty()) {
      bind_targets(*scope, s.names, value);
      return;
    }
    const Value* target = scope->lookup(s.names[0]);
    if (!target || !target->is_namespace()) fail("cannot assign attribute on non-namespace object");
    target->as_namespace().attributes.set(s.attribute, std::move(value));
  }

  void define_macro(const Stmt& s, const ScopePtr& scope) {
    const Stmt* macro = &s;
    // The macro reads its defining scope at call time (weakly held: the scope holds the macro).
    std::weak_ptr<Scope> defining_scope = scope;
    scope->vars[s.text] = Value::function(s.text, [this, macro, defining_scope](const CallArgs& args) {
      if (args.positional.size() > macro->names.size())
        fail("macro '", macro->text, "' takes not more than ", macro->names.size(), " argument(s)");
      auto call_scope = frame_of(defining_scope.lock(), *macro, 0);
      for (size_t i = 0; i < macro->names.size(); ++i) {
        if (i < args.positional.size()) {
          call_scope->vars[macro->names[i]] = args.positional[i];
        } else if (macro->exprs[i]) {
          call_scope->vars[macro->names[i]] = eval(*macro->exprs[i], call_scope);
        } else {
          call_scope->vars[macro->names[i]] = Value::undefined(str("parameter '", macro->names[i], "' was not provided"));
        }
      }
      for (const auto& [key, v] : args.keyword) {
        auto it = std::find(macro->names.begin(), macro->names.end(), key);
        if (it == macro->names.end()) fail("macro '", macro->text, "' takes no keyword argument '", key, "'");
        call_scope->vars[key] = v;
      }
      if (++call_depth_ > kMaxCallDepth) fail("macro '", macro->text, "' recursed more than ", kMaxCallDepth, " times");
      std::string out;
      exec(macro->bodies[0], call_scope, out);
      --call_depth_;
      return Value(std::move(out));
    });
  }

  CallArgs eval_arguments(const Expr& e, const ScopePtr& scope) {
    CallArgs args;
    for (size_t i = 1; i < e.operands.size(); ++i) args.positional.push_back(eval(*e.operands[i], scope));
    for (const Keyword& k : e.keywords) args.keyword.emplace_back(k.name, eval(*k.value, scope));
    return args;
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    pos_ = e.pos;
    switch (e.kind) {
      case ExprKind::Constant: return e.constant;
      case ExprKind::Name: {
        if (const Value* v = scope->lookup(e.text)) return *v;
        return Value::undefined("'" + e.text + "' is undefined");
      }
      case ExprKind::Attribute: return get_attribute(defined(eval(*e.operands[0], scope)), e.text);
      case ExprKind::Item: {
        const Value object = eval(*e.operands[0], scope);
        return get_item(defined(object), eval(*e.operands[1], scope));
      }
      case ExprKind::Slice: {
        const Value object = eval(*e.operands[0], scope);
        Value bounds[3];
        for (int i = 0; i < 3; ++i) bounds[i] = e.operands[i + 1] ? eval(*e.operands[i + 1], scope) : Value::none();
        return get_slice(defined(object), bounds[0], bounds[1], bounds[2]);
      }
      case ExprKind::Call: {
        const Value callee = eval(*e.operands[0], scope);
        CallArgs args = eval_arguments(e, scope);
        return call(defined(callee), args);
      }
      case ExprKind::Filter: {
        const Value value = eval(*e.operands[0], scope);
        return apply_filter(e.text, value, eval_arguments(e, scope));
      }
      case ExprKind::Test: {
        const Value value = eval(*e.operands[0], scope);
        return Value(apply_test(e.text, value, eval_arguments(e, scope)) != e.negated);
      }
      case ExprKind::Unary: {
        const Value v = eval(*e.operands[0], scope);
        if (e.text == "not") return Value(!truthy(v));
        if (!defined(v).is_number()) fail("bad operand type for unary ", e.text, ": '", v.type_name(), "'");
        if (e.text == "+") return v.is_bool() ? Value(v.as_int()) : v;
        return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
      }
      case ExprKind::Binary: {
        const Value left = eval(*e.operands[0], scope);
        if (e.text == "and") return truthy(left) ? eval(*e.operands[1], scope) : left;
        if (e.text == "or") return truthy(left) ? left : eval(*e.operands[1], scope);
        const Value right = eval(*e.operands[1], scope);
        if (e.text == "~") return Value(to_str(left) + to_str(right));
        return arithmetic(e.text, left, right);
      }
      case ExprKind::Compare: {
        Value left = eval(*e.operands[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.operands[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return Value(false);
          left = std::move(right);
        }
        return Value(true);
      }
      case ExprKind::Conditional: {
        if (truthy(eval(*e.operands[1], scope))) return eval(*e.operands[0], scope);
        if (e.operands[2]) return eval(*e.operands[2], scope);
        return Value::undefined(str("the inline if-expression on line ", e.pos.line,
                                    " evaluated to false and no else section was defined"));
      }
      case ExprKind::List:
      case ExprKind::Tuple: {
        std::vector<Value> items;
        for (const ExprPtr& item : e.operands) items.push_back(eval(*item, scope));
        return Value(std::move(items), e.kind == ExprKind::Tuple);
      }
      case ExprKind::Dict: {
        Dict dict;
        for (size_t i = 0; i + 1 < e.operands.size(); i += 2) {
          const Value key = eval(*e.operands[i], scope);
          if (!key.is_string()) fail("dictionary keys must be strings in chat templates, not ", key.type_name());
          dict.set(key.as_string(), eval(*e.operands[i + 1], scope));
        }
        return Value(std::move(dict));
      }
      case ExprKind::BlockValue: return *block_value_;
    }
    fail("unknown expression");
  }

  static constexpr int kMaxCallDepth = 32;
  const std::string& name_;
  SourcePos pos_;
  const Value* block_value_ = nullptr;
  int call_depth_ = 0;
};

std::tm local_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm result{};
  localtime_r(&t, &result);
  return result;
}

}  // namespace

Template::Template(std::string_view source, std::string name) : name_(std::move(name)) {
  body_ = parse(tokenize(source, name_), name_);
  undefined_on_entry_ = analyze_scopes(body_);
}

std::string Template::render(const Dict& variables, const RenderOptions& options) const {
  auto globals = std::make_shared<Scope>();
  const Dict functions = global_functions(options.now ? options.now : local_now);
  for (const auto& [key, value] : functions.entries()) globals->vars[key] = value;
  auto context = child_of(globals);
  for (const auto& [key, value] : variables.entries()) context->vars[key] = value;
  auto scope = frame_of(context, undefined_on_entry_);
  Interpreter interpreter(name_);
  std::string out;
  try {
    interpreter.exec(body_, scope, out);
  } catch (const PositionedError&) {
    throw;
  } catch (const Error& e) {
    interpreter.rethrow_positioned(e);
  }
  return out;
}

}  // namespace aqlm::jinja
