#include "core/text/jinja_parser.h"

#include <algorithm>
#include <initializer_list>
#include <stdexcept>

#include "core/text/jinja_builtins.h"

namespace aqlm::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name) : tokens_(tokens), name_(name) {}

  Body parse_template() { return parse_body({}, nullptr); }

 private:
  // ---- token stream ----
  const Token& current() const { return tokens_[index_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(index_ + ahead, tokens_.size() - 1)];
  }
  const Token& advance() {
    const Token& t = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return t;
  }
  bool at_operator(const char* op) const { return current().type == TokenType::Operator && current().value == op; }
  bool at_name(const char* name) const { return current().type == TokenType::Name && current().value == name; }
  bool accept_operator(const char* op) {
    if (!at_operator(op)) return false;
    advance();
    return true;
  }
  bool accept_name(const char* name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }
  [[noreturn]] void error(const Token& at, const std::string& message) const { syntax_error(name_, at.pos, message); }
  [[noreturn]] void error_at(SourcePos pos, const std::string& message) const { syntax_error(name_, pos, message); }
  [[noreturn]] void unexpected(const std::string& expected) const {
    error(current(), "expected " + expected + ", got " + describe(current()));
  }
  void expect_operator(const char* op) {
    if (!accept_operator(op)) unexpected(std::string("'") + op + "'");
  }
  std::string expect_name() {
    if (current().type != TokenType::Name) unexpected("a name");
    return advance().value;
  }
  void expect_block_end() {
    if (current().type != TokenType::BlockEnd) unexpected("'%}'");
    advance();
  }

  // ---- statements ----

  // Parses until a {% tag %} named in `end_tags` (left unconsumed: current() is that name) or
  // the end of the template when `end_tags` is empty. `opener` names the block for errors.
  Body parse_body(std::initializer_list<const char*> end_tags, const Token* opener) {
    const NestingGuard guard(*this, current());
    Body body;
    while (true) {
      const Token& t = current();
      switch (t.type) {
        case TokenType::End:
          if (end_tags.size() == 0) return body;
          error(t, "unexpected end of template: the '" + opener->value + "' block opened at line " +
                       std::to_string(opener->pos.line) + " needs '{% " + *(end_tags.end() - 1) + " %}'");
        case TokenType::Text: {
          auto s = make_stmt(StmtKind::Text, t);
          s->text = t.value;
          body.push_back(std::move(s));
          advance();
          break;
        }
        case TokenType::VariableBegin: {
          advance();
          auto s = make_stmt(StmtKind::Output, t);
          s->exprs.push_back(parse_tuple(true, {}));
          if (current().type != TokenType::VariableEnd) unexpected("'}}'");
          advance();
          body.push_back(std::move(s));
          break;
        }
        case TokenType::BlockBegin: {
          const Token& tag = peek();
          if (tag.type == TokenType::Name) {
            for (const char* end : end_tags) {
              if (tag.value == end) {
                advance();  // leave the tag name current
                return body;
              }
            }
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        default: error(t, "unexpected " + describe(t));
      }
    }
  }

  StmtPtr make_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->pos = at.pos;
    return s;
  }

  StmtPtr parse_statement() {
    const Token& tag = current();
    if (tag.type != TokenType::Name) unexpected("a tag name");
    const std::string& name = tag.value;
    if (name == "if") return parse_if();
    if (name == "for") return parse_for();
    if (name == "set") return parse_set();
    if (name == "macro") return parse_macro();
    if (name == "filter") return parse_filter_block();
    if (name == "generation") return parse_scoped("endgeneration");
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + name + "' outside of a for loop");
      auto s = make_stmt(name == "break" ? StmtKind::Break : StmtKind::Continue, tag);
      advance();
      expect_block_end();
      return s;
    }
    for (const char* unsupported : {"call", "block", "extends", "include", "import", "from", "with", "autoescape"}) {
      if (name == unsupported) error(tag, "the '" + name + "' tag is not supported in chat templates");
    }
    if (name.rfind("end", 0) == 0 || name == "elif" || name == "else")
      error(tag, "unexpected '" + name + "' without a matching opening tag");
    error(tag, "unknown tag '" + name + "'");
  }

  StmtPtr parse_if() {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::If, opener);
    advance();
    while (true) {
      s->exprs.push_back(parse_tuple(false, {}));
      expect_block_end();
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, &opener));
      if (accept_name("elif")) continue;
      if (accept_name("else")) {
        expect_block_end();
        s->bodies.push_back(parse_body({"endif"}, &opener));
      }
      break;
    }
    expect_name();  // endif
    expect_block_end();
    return s;
  }

  std::vector<std::string> parse_targets(const char* end_name) {
    std::vector<std::string> names;
    const bool parenthesised = accept_operator("(");
    while (true) {
      names.push_back(expect_name());
      if (!accept_operator(",")) break;
      if (at_operator(")") || (end_name && at_name(end_name)) || at_operator("=")) break;  // trailing comma
    }
    if (parenthesised) expect_operator(")");
    return names;
  }

  StmtPtr parse_for() {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::For, opener);
    advance();
    s->names = parse_targets("in");
    if (!accept_name("in")) unexpected("'in'");
    s->exprs.push_back(parse_tuple(false, {"if", "recursive"}));
    s->exprs.push_back(accept_name("if") ? parse_expression(true) : nullptr);
    if (at_name("recursive")) error(current(), "recursive for loops are not supported in chat templates");
    expect_block_end();
    ++loop_depth_;
    s->bodies.push_back(parse_body({"else", "endfor"}, &opener));
    --loop_depth_;
    if (accept_name("else")) {
      expect_block_end();
      s->bodies.push_back(parse_body({"endfor"}, &opener));
    } else {
      s->bodies.emplace_back();
    }
    expect_name();  // endfor
    expect_block_end();
    return s;
  }

  StmtPtr parse_set() {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::Set, opener);
    advance();
    if (current().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == ".") {
      s->names.push_back(advance().value);
      advance();  // '.'
      s->attribute = expect_name();
    } else {
      s->names = parse_targets(nullptr);
    }
    if (accept_operator("=")) {
      s->exprs.push_back(parse_tuple(true, {}));
      expect_block_end();
      return s;
    }
    if (!s->attribute.empty() || s->names.size() != 1) unexpected("'='");
    expect_block_end();
    s->bodies.push_back(parse_body({"endset"}, &opener));
    advance();  // endset
    expect_block_end();
    return s;
  }

  StmtPtr parse_macro() {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::Macro, opener);
    advance();
    s->text = expect_name();
    expect_operator("(");
    while (!at_operator(")")) {
      if (!s->names.empty()) expect_operator(",");
      if (at_operator(")")) break;
      s->names.push_back(expect_name());
      s->exprs.push_back(accept_operator("=") ? parse_expression(true) : nullptr);
    }
    advance();  // ')'
    expect_block_end();
    s->bodies.push_back(parse_body({"endmacro"}, &opener));
    advance();  // endmacro
    if (current().type == TokenType::Name && current().value == s->text) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block() {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::FilterBlock, opener);
    advance();
    auto placeholder = make_expr(ExprKind::BlockValue, opener);
    s->exprs.push_back(parse_filter(std::move(placeholder), /*leading_pipe=*/false));
    while (at_operator("|")) s->exprs[0] = parse_filter(std::move(s->exprs[0]), true);
    expect_block_end();
    s->bodies.push_back(parse_body({"endfilter"}, &opener));
    advance();
    expect_block_end();
    return s;
  }

  StmtPtr parse_scoped(const char* end_tag) {
    const Token& opener = current();
    auto s = make_stmt(StmtKind::Scope, opener);
    advance();
    expect_block_end();
    s->bodies.push_back(parse_body({end_tag}, &opener));
    advance();
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  // Nesting limits keep the recursive parser, interpreter and destructors far from the
  // stack's end whatever a model file contains.
  static constexpr int kMaxDepth = 100;

  class NestingGuard {
   public:
    NestingGuard(Parser& parser, const Token& at) : parser_(parser) {
      if (++parser_.nesting_ > kMaxDepth) parser_.error(at, "the template nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~NestingGuard() { --parser_.nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    Parser& parser_;
  };

  // Records the depth of a finished composite node and enforces the limit.
  ExprPtr seal(ExprPtr e) {
    int depth = 0;
    for (const ExprPtr& op : e->operands)
      if (op) depth = std::max(depth, op->depth);
    for (const Keyword& k : e->keywords) depth = std::max(depth, k.value->depth);
    e->depth = depth + 1;
    if (e->depth > kMaxDepth) error_at(e->pos, "the expression nests deeper than " + std::to_string(kMaxDepth) + " levels");
    return e;
  }

  ExprPtr make_expr(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = at.pos;
    return e;
  }

  ExprPtr binary(const Token& at, const std::string& op, ExprPtr left, ExprPtr right) {
    auto e = make_expr(ExprKind::Binary, at);
    e->text = op;
    e->operands.push_back(std::move(left));
    e->operands.push_back(std::move(right));
    return seal(std::move(e));
  }

  bool at_tuple_end(std::initializer_list<const char*> extra_end_names) const {
    const Token& t = current();
    if (t.type == TokenType::VariableEnd || t.type == TokenType::BlockEnd || t.type == TokenType::End) return true;
    if (t.type == TokenType::Operator && t.value == ")") return true;
    if (t.type == TokenType::Name)
      for (const char* n : extra_end_names)
        if (t.value == n) return true;
    return false;
  }

  // An expression or, with commas, a tuple (as in {{ a, b }} and for/set targets' values).
  ExprPtr parse_tuple(bool with_condexpr, std::initializer_list<const char*> extra_end_names,
                      bool explicit_parentheses = false) {
    const Token& start = current();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_operator(",");
      if (at_tuple_end(extra_end_names)) break;
      items.push_back(parse_expression(with_condexpr));
      if (!at_operator(",")) break;
      is_tuple = true;
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) error(current(), "expected an expression, got " + describe(current()));
    }
    auto e = make_expr(ExprKind::Tuple, start);
    e->operands = std::move(items);
    return seal(std::move(e));
  }

  ExprPtr parse_expression(bool with_condexpr) {
    const NestingGuard guard(*this, current());
    ExprPtr expr = parse_or();
    if (!with_condexpr) return expr;
    while (at_name("if")) {
      const Token& at = advance();
      auto e = make_expr(ExprKind::Conditional, at);
      ExprPtr condition = parse_or();
      ExprPtr otherwise = accept_name("else") ? parse_expression(true) : nullptr;
      e->operands.push_back(std::move(expr));
      e->operands.push_back(std::move(condition));
      e->operands.push_back(std::move(otherwise));
      expr = seal(std::move(e));
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      const Token& at = advance();
      left = binary(at, "or", std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      const Token& at = advance();
      left = binary(at, "and", std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      const NestingGuard guard(*this, current());
      const Token& at = advance();
      auto e = make_expr(ExprKind::Unary, at);
      e->text = "not";
      e->operands.push_back(parse_not());
      return seal(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = current();
    ExprPtr first = parse_math1();
    ExprPtr compare;
    while (true) {
      std::string op;
      if (current().type == TokenType::Operator &&
          (current().value == "==" || current().value == "!=" || current().value == "<" || current().value == ">" ||
           current().value == "<=" || current().value == ">=")) {
        op = advance().value;
      } else if (at_name("in")) {
        advance();
        op = "in";
      } else if (at_name("not") && peek().type == TokenType::Name && peek().value == "in") {
        advance();
        advance();
        op = "not in";
      } else {
        break;
      }
      if (!compare) {
        compare = make_expr(ExprKind::Compare, start);
        compare->operands.push_back(std::move(first));
      }
      compare->ops.push_back(op);
      compare->operands.push_back(parse_math1());
    }
    return compare ? seal(std::move(compare)) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_operator("+") || at_operator("-")) {
      const Token& at = advance();
      left = binary(at, at.value, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (at_operator("~")) {
      const Token& at = advance();
      left = binary(at, "~", std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_operator("*") || at_operator("/") || at_operator("//") || at_operator("%")) {
      const Token& at = advance();
      left = binary(at, at.value, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_operator("**")) {
      const Token& at = advance();
      left = binary(at, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (at_operator("-") || at_operator("+")) {
      const NestingGuard guard(*this, current());
      const Token& at = advance();
      node = make_expr(ExprKind::Unary, at);
      node->text = at.value;
      node->operands.push_back(parse_unary(false));
      node = seal(std::move(node));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr constant(const Token& at, Value v) {
    auto e = make_expr(ExprKind::Constant, at);
    e->constant = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    switch (t.type) {
      case TokenType::Name: {
        advance();
        if (t.value == "true" || t.value == "True") return constant(t, Value(true));
        if (t.value == "false" || t.value == "False") return constant(t, Value(false));
        if (t.value == "none" || t.value == "None") return constant(t, Value::none());
        auto e = make_expr(ExprKind::Name, t);
        e->text = t.value;
        return e;
      }
      case TokenType::String: {
        std::string s;
        while (current().type == TokenType::String) s += advance().value;  // adjacent literals concatenate
        return constant(t, Value(std::move(s)));
      }
      case TokenType::Integer: {
        advance();
        try {
          return constant(t, Value(static_cast<int64_t>(std::stoll(t.value))));
        } catch (const std::out_of_range&) {
          error(t, "integer " + t.value + " does not fit in 64 bits");
        }
      }
      case TokenType::Float: advance(); return constant(t, Value(std::stod(t.value)));
      case TokenType::Operator:
        if (t.value == "(") {
          advance();
          ExprPtr inner = parse_tuple(true, {}, true);
          expect_operator(")");
          return inner;
        }
        if (t.value == "[") return parse_list();
        if (t.value == "{") return parse_dict();
        break;
      default: break;
    }
    error(t, "unexpected " + describe(t));
  }

  ExprPtr parse_list() {
    auto e = make_expr(ExprKind::List, advance());
    while (!at_operator("]")) {
      if (!e->operands.empty()) expect_operator(",");
      if (at_operator("]")) break;
      e->operands.push_back(parse_expression(true));
    }
    advance();
    return seal(std::move(e));
  }

  ExprPtr parse_dict() {
    auto e = make_expr(ExprKind::Dict, advance());
    while (!at_operator("}")) {
      if (!e->operands.empty()) expect_operator(",");
      if (at_operator("}")) break;
      e->operands.push_back(parse_expression(true));
      expect_operator(":");
      e->operands.push_back(parse_expression(true));
    }
    advance();
    return seal(std::move(e));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (at_operator(".") || at_operator("[")) {
        node = parse_subscript(std::move(node));
      } else if (at_operator("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at_operator("|")) {
        node = parse_filter(std::move(node), true);
      } else if (at_name("is")) {
        node = parse_test(std::move(node));
      } else if (at_operator("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& at = advance();
    if (at.value == ".") {
      const Token& attr = current();
      if (attr.type == TokenType::Name) {
        advance();
        auto e = make_expr(ExprKind::Attribute, at);
        e->text = attr.value;
        e->operands.push_back(std::move(node));
        return seal(std::move(e));
      }
      if (attr.type == TokenType::Integer) {  // matrix.0
        advance();
        auto e = make_expr(ExprKind::Item, at);
        e->operands.push_back(std::move(node));
        e->operands.push_back(constant(attr, Value(static_cast<int64_t>(std::stoll(attr.value)))));
        return seal(std::move(e));
      }
      unexpected("an attribute name");
    }
    std::vector<ExprPtr> keys;
    while (!at_operator("]")) {
      if (!keys.empty()) expect_operator(",");
      keys.push_back(parse_subscribed());
    }
    advance();
    if (keys.empty()) error(at, "expected a subscript inside '[]'");
    ExprPtr key;
    if (keys.size() == 1) {
      key = std::move(keys[0]);
    } else {
      key = make_expr(ExprKind::Tuple, at);
      key->operands = std::move(keys);
      key = seal(std::move(key));
    }
    if (key->kind == ExprKind::Slice) {
      key->operands.insert(key->operands.begin(), std::move(node));
      return seal(std::move(key));
    }
    auto e = make_expr(ExprKind::Item, at);
    e->operands.push_back(std::move(node));
    e->operands.push_back(std::move(key));
    return seal(std::move(e));
  }

  // One subscript: an expression, or a slice start:stop:step (returned as a Slice without object).
  ExprPtr parse_subscribed() {
    const Token& at = current();
    ExprPtr start;
    if (!at_operator(":")) {
      start = parse_expression(true);
      if (!at_operator(":")) return start;
    }
    advance();  // first ':'
    auto slice = make_expr(ExprKind::Slice, at);
    slice->operands.push_back(std::move(start));
    auto bound_ends = [&] { return at_operator(":") || at_operator("]") || at_operator(","); };
    slice->operands.push_back(bound_ends() ? nullptr : parse_expression(true));
    if (accept_operator(":")) {
      slice->operands.push_back(at_operator("]") || at_operator(",") ? nullptr : parse_expression(true));
    } else {
      slice->operands.push_back(nullptr);
    }
    return slice;
  }

  // (positional..., name=value...) appended to e.operands (after the callee/value) and e.keywords.
  void parse_call_arguments(Expr& e) {
    expect_operator("(");
    bool first = true;
    while (!at_operator(")")) {
      if (!first) {
        expect_operator(",");
        if (at_operator(")")) break;  // trailing comma
      }
      first = false;
      if (at_operator("*") || at_operator("**")) error(current(), "*args and **kwargs are not supported");
      if (current().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
        std::string key = advance().value;
        advance();
        e.keywords.push_back(Keyword{std::move(key), parse_expression(true)});
      } else {
        if (!e.keywords.empty()) error(current(), "a positional argument follows a keyword argument");
        e.operands.push_back(parse_expression(true));
      }
    }
    advance();
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make_expr(ExprKind::Call, current());
    e->operands.push_back(std::move(callee));
    parse_call_arguments(*e);
    return seal(std::move(e));
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (at_operator(".") && peek().type == TokenType::Name) {
      advance();
      name += "." + advance().value;
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr value, bool leading_pipe) {
    if (leading_pipe) advance();  // '|'
    const Token& at = current();
    auto e = make_expr(ExprKind::Filter, at);
    e->text = parse_dotted_name();
    if (!has_filter(e->text)) error(at, "unknown filter '" + e->text + "'");
    e->operands.push_back(std::move(value));
    if (at_operator("(")) parse_call_arguments(*e);
    return seal(std::move(e));
  }

  ExprPtr parse_test(ExprPtr value) {
    advance();  // 'is'
    const bool negated = accept_name("not");
    const Token& at = current();
    auto e = make_expr(ExprKind::Test, at);
    e->negated = negated;
    e->text = parse_dotted_name();
    if (!has_test(e->text)) error(at, "unknown test '" + e->text + "'");
    e->operands.push_back(std::move(value));
    const Token& next = current();
    if (at_operator("(")) {
      parse_call_arguments(*e);
    } else if ((next.type == TokenType::Name || next.type == TokenType::String || next.type == TokenType::Integer ||
                next.type == TokenType::Float || at_operator("[") || at_operator("{")) &&
               !(next.type == TokenType::Name && (next.value == "else" || next.value == "or" || next.value == "and"))) {
      if (next.type == TokenType::Name && next.value == "is") error(next, "you cannot chain multiple tests with 'is'");
      e->operands.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`, `x is sameas none`
    }
    return seal(std::move(e));
  }

  const std::vector<Token>& tokens_;
  const std::string& name_;
  size_t index_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens, const std::string& template_name) {
  return Parser(tokens, template_name).parse_template();
}

}  // namespace aqlm::jinja
