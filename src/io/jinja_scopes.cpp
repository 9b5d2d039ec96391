// Which names each scope of a template starts with undefined (see analyze_scopes in
// jinja_ast.h). The rules are jinja2's idtracking (Symbols.load/store/branch_update and the
// frame visitors), restricted to what decides "undefined at start": a store that is the first
// reference to a name in its scope, outside any `if` branch, with no enclosing scope knowing
// the name. Reads, stores inside `if` branches and names known outside resolve normally.
#include <unordered_set>

#include "io/jinja_ast.h"

namespace wick::io::jinja {

namespace {

using NameSet = std::unordered_set<std::string>;

class ScopeScan {
 public:
  explicit ScopeScan(std::vector<const NameSet*> outer) : outer_(std::move(outer)) {}

  void param(const std::string& n) { refs_.insert(n); }

  // Scans the statements of this scope (not those of nested scopes).
  void scan(const Body& body, bool conditional) {
    for (const auto& s : body) scan(*s, conditional);
  }

  // Analyses every scope nested in `body`, with this scope's names as the enclosing ones.
  void nested(Body& body) {
    for (auto& s : body) nested(*s);
  }

  std::vector<std::string> take_undefined() { return std::move(undefined_); }

 private:
  bool known_outside(const std::string& n) const {
    for (const NameSet* s : outer_)
      if (s->count(n)) return true;
    return false;
  }
  void load(const std::string& n) {
    if (!refs_.count(n) && !known_outside(n)) refs_.insert(n);
  }
  void store(const std::string& n, bool conditional) {
    if (refs_.count(n)) return;
    refs_.insert(n);
    if (!conditional && !known_outside(n)) undefined_.push_back(n);
  }
  void expr(const Expr* e) {
    if (!e) return;
    if (e->kind == ExprKind::name) load(e->name);
    for (const auto& a : e->args) expr(a.get());
    for (const auto& kv : e->kwargs) expr(kv.second.get());
  }

  void scan(const Stmt& s, bool conditional) {
    switch (s.kind) {
      case StmtKind::output: expr(s.exprs[0].get()); break;
      case StmtKind::if_:
        for (const auto& c : s.exprs) expr(c.get());
        for (const auto& b : s.bodies) scan(b, true);
        break;
      case StmtKind::for_: expr(s.exprs[0].get()); break;  // the iterable; the rest is a scope
      case StmtKind::set:
        expr(s.exprs[0].get());
        for (const auto& t : s.targets) store(t, conditional);
        break;
      case StmtKind::set_attr:
        load(s.targets[0]);
        expr(s.exprs[0].get());
        break;
      case StmtKind::set_block:
        for (const auto& t : s.targets) store(t, conditional);
        break;
      case StmtKind::macro: store(s.text, conditional); break;
      case StmtKind::with:
        for (const auto& e : s.exprs) expr(e.get());
        break;
      case StmtKind::filter_block: expr(s.exprs[0].get()); break;
      default: break;
    }
  }

  // One nested scope: its parameters, its own statements, then the scopes inside it.
  std::vector<std::string> child(Body& body, const std::vector<std::string>& params,
                                 const std::vector<const Expr*>& param_exprs = {}) {
    std::vector<const NameSet*> outer = outer_;
    outer.push_back(&refs_);
    ScopeScan inner(std::move(outer));
    for (const auto& p : params) inner.param(p);
    for (const Expr* e : param_exprs) inner.expr(e);
    inner.scan(body, false);
    inner.nested(body);
    return inner.take_undefined();
  }

  void nested(Stmt& s) {
    switch (s.kind) {
      case StmtKind::if_:
        for (auto& b : s.bodies) nested(b);  // if branches belong to this scope
        return;
      case StmtKind::for_: {
        std::vector<std::string> params = s.targets;
        params.push_back("loop");
        s.undefined_at_start.push_back(child(s.bodies[0], params));
        s.undefined_at_start.push_back(child(s.bodies[1], {}));
        return;
      }
      case StmtKind::macro: {
        std::vector<std::string> params = s.targets;
        params.insert(params.end(), {"varargs", "kwargs"});
        std::vector<const Expr*> defaults;
        for (const auto& d : s.exprs) defaults.push_back(d.get());
        s.undefined_at_start.push_back(child(s.bodies[0], params, defaults));
        return;
      }
      case StmtKind::with:
        s.undefined_at_start.push_back(child(s.bodies[0], s.targets));
        return;
      case StmtKind::set_block:
      case StmtKind::filter_block:
      case StmtKind::generation: s.undefined_at_start.push_back(child(s.bodies[0], {})); return;
      default: return;
    }
  }

  std::vector<const NameSet*> outer_;
  NameSet refs_;
  std::vector<std::string> undefined_;
};

}  // namespace

void analyze_scopes(ParsedTemplate& tmpl) {
  ScopeScan root({});
  root.scan(tmpl.body, false);
  root.nested(tmpl.body);
  tmpl.undefined_at_start = root.take_undefined();
}

}  // namespace wick::io::jinja
