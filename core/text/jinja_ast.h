#pragma once
// The syntax tree of a parsed template: expressions and statements as plain nodes whose
// meaning is given by their kind; the interpreter (jinja_interpreter.cpp) walks them.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/text/jinja_lexer.h"
#include "core/text/jinja_value.h"

namespace aqlm::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  Constant,     // constant
  Name,         // text = variable name
  Attribute,    // operands[0].text
  Item,         // operands[0][operands[1]]
  Slice,        // operands[0][operands[1]:operands[2]:operands[3]] (each bound may be null)
  Call,         // operands[0](operands[1..], keywords)
  Filter,       // operands[0] | text(operands[1..], keywords)
  Test,         // operands[0] is [not] text(operands[1..], keywords)
  Unary,        // text ("-", "+", "not") operands[0]
  Binary,       // operands[0] text operands[1]: + - * / // % ** ~ and or
  Compare,      // operands[0] ops[0] operands[1] ops[1] operands[2] ...: == != < > <= >= in "not in"
  Conditional,  // operands[0] if operands[1] else operands[2] (else may be null)
  List,         // [operands...]
  Tuple,        // (operands...)
  Dict,         // {operands[0]: operands[1], ...}
  BlockValue,   // the rendered body of a {% filter %} block
};

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  SourcePos pos;
  std::string text;
  Value constant;
  std::vector<ExprPtr> operands;
  std::vector<Keyword> keywords;
  std::vector<std::string> ops;  // Compare
  bool negated = false;          // Test: "is not"
  int depth = 1;                 // of the subtree, bounded by the parser so evaluation cannot exhaust the stack
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  Text,         // text
  Output,       // {{ exprs[0] }}
  If,           // exprs = conditions; bodies[i] for exprs[i]; bodies.back() is else when bodies > exprs
  For,          // names = targets; exprs[0] = iterable, exprs[1] = filter (may be null); bodies = {body, else}
  Set,          // names = targets (or names[0].attribute); exprs[0] = value, or bodies[0] for a block set
  Macro,        // text = name; names = parameters; exprs = defaults (null where none); bodies[0]
  FilterBlock,  // exprs[0] = filter chain applied to BlockValue; bodies[0]
  Scope,        // bodies[0] in its own scope ({% generation %})
  Break,
  Continue,
};

struct Stmt {
  StmtKind kind;
  SourcePos pos;
  std::string text;
  std::vector<std::string> names;
  std::string attribute;  // Set: "ns.attribute" targets
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  // For each body that is a frame of its own (loop body and else, macro, set block, filter
  // block, scope): names that are undefined on entry, shadowing outer values (jinja_scopes.h).
  std::vector<std::vector<std::string>> undefined_on_entry;
};

}  // namespace aqlm::jinja
