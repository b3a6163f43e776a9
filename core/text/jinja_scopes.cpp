#include "core/text/jinja_scopes.h"

#include <functional>
#include <map>
#include <set>

namespace aqlm::jinja {
namespace {

enum class RefKind { Parameter, Resolve, Alias, Undefined };

// One frame's symbol table, as jinja2's Symbols.
struct Symbols {
  const Symbols* parent = nullptr;
  std::map<std::string, RefKind> refs;
  std::set<std::string> stores;

  bool has_ref(const std::string& name) const {
    for (const Symbols* s = this; s; s = s->parent)
      if (s->refs.count(name)) return true;
    return false;
  }
  void load(const std::string& name) {
    if (!has_ref(name)) refs[name] = RefKind::Resolve;
  }
  void store(const std::string& name) {
    stores.insert(name);
    if (refs.count(name)) return;
    refs[name] = parent && parent->has_ref(name) ? RefKind::Alias : RefKind::Undefined;
  }
  void declare_parameter(const std::string& name) {
    stores.insert(name);
    refs[name] = RefKind::Parameter;
  }
  // After an if: every name a branch assigned (and the frame had not) reads the outer value
  // until assigned, because the branch may not run.
  void branch_update(const std::vector<Symbols>& branches) {
    std::set<std::string> branch_stores;
    for (const Symbols& b : branches) branch_stores.insert(b.stores.begin(), b.stores.end());
    for (const std::string& s : stores) branch_stores.erase(s);
    for (const Symbols& b : branches) {
      for (const auto& [name, kind] : b.refs) refs[name] = kind;
      stores.insert(b.stores.begin(), b.stores.end());
    }
    for (const std::string& name : branch_stores)
      refs[name] = parent && parent->has_ref(name) ? RefKind::Alias : RefKind::Resolve;
  }
};

// A frame to analyze once its parent's table is complete.
struct PendingFrame {
  Stmt* owner;
  size_t body_index;
};

class FrameVisitor {
 public:
  explicit FrameVisitor(Symbols& symbols, std::vector<PendingFrame>& children)
      : symbols_(&symbols), children_(children) {}

  void visit(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::Name) symbols_->load(e->text);
    for (const ExprPtr& op : e->operands) visit(op.get());
    for (const Keyword& k : e->keywords) visit(k.value.get());
  }

  void visit(Body& body) {
    for (StmtPtr& s : body) visit(*s);
  }

  void visit(Stmt& s) {
    switch (s.kind) {
      case StmtKind::Text:
      case StmtKind::Break:
      case StmtKind::Continue: return;
      case StmtKind::Output: visit(s.exprs[0].get()); return;
      case StmtKind::If: visit_if(s, 0); return;
      case StmtKind::For:
        visit(s.exprs[0].get());
        children_.push_back({&s, 0});
        children_.push_back({&s, 1});
        return;
      case StmtKind::Set:
        if (!s.exprs.empty()) visit(s.exprs[0].get());
        if (!s.attribute.empty()) {
          symbols_->load(s.names[0]);  // ns.attr = ... reads ns
        } else {
          for (const std::string& n : s.names) symbols_->store(n);
        }
        if (s.exprs.empty()) children_.push_back({&s, 0});
        return;
      case StmtKind::Macro:
        symbols_->store(s.text);
        children_.push_back({&s, 0});
        return;
      case StmtKind::FilterBlock:
        visit(s.exprs[0].get());
        children_.push_back({&s, 0});
        return;
      case StmtKind::Scope: children_.push_back({&s, 0}); return;
    }
  }

 private:
  // jinja2 nests elif as an If inside the elif branch: test, then body / elif / else branches.
  void visit_if(Stmt& s, size_t index) {
    visit(s.exprs[index].get());
    const bool has_else = s.bodies.size() > s.exprs.size();
    auto branch = [&](auto&& fill) {
      Symbols copy = *symbols_;
      Symbols* saved = symbols_;
      symbols_ = &copy;
      fill();
      symbols_ = saved;
      return copy;
    };
    std::vector<Symbols> branches;
    branches.push_back(branch([&] { visit(s.bodies[index]); }));
    branches.push_back(branch([&] {
      if (index + 1 < s.exprs.size()) visit_if(s, index + 1);
    }));
    branches.push_back(branch([&] {
      if (index == 0 && has_else) visit(s.bodies.back());
    }));
    symbols_->branch_update(branches);
  }

  Symbols* symbols_;
  std::vector<PendingFrame>& children_;
};

void analyze_frame(Body& body, Symbols& symbols, std::vector<std::string>* undefined_names,
                   const std::function<void(Symbols&)>& declare) {
  std::vector<PendingFrame> children;
  declare(symbols);
  FrameVisitor(symbols, children).visit(body);
  if (undefined_names) {
    for (const auto& [name, kind] : symbols.refs)
      if (kind == RefKind::Undefined) undefined_names->push_back(name);
  }
  for (const PendingFrame& child : children) {
    Stmt& owner = *child.owner;
    if (owner.undefined_on_entry.size() < owner.bodies.size()) owner.undefined_on_entry.resize(owner.bodies.size());
    Symbols inner;
    inner.parent = &symbols;
    analyze_frame(owner.bodies[child.body_index], inner, &owner.undefined_on_entry[child.body_index],
                  [&](Symbols& s) {
                    if (owner.kind == StmtKind::For && child.body_index == 0) {
                      for (const std::string& n : owner.names) s.declare_parameter(n);
                      s.declare_parameter("loop");
                    } else if (owner.kind == StmtKind::Macro) {
                      for (const std::string& n : owner.names) s.declare_parameter(n);
                    }
                  });
  }
}

}  // namespace

std::vector<std::string> analyze_scopes(Body& root) {
  std::vector<std::string> undefined_names;
  Symbols symbols;
  analyze_frame(root, symbols, &undefined_names, [](Symbols&) {});
  return undefined_names;
}

}  // namespace aqlm::jinja
