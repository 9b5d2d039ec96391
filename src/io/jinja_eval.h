#pragma once
// The tree-walking evaluator of the Jinja engine, and the hooks the builtins (filters, tests,
// methods, globals) use to call back into it.
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "io/jinja_ast.h"
#include "io/jinja_value.h"

namespace wick::io::jinja {

/// A parsed template.
struct Program {
  std::string origin;
  ParsedTemplate tmpl;
};

/// The clock strftime_now reads: a fixed civil time, or the local time when absent.
struct CivilTime {
  int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
};

struct RenderSettings {
  uint64_t max_steps = 0;
  size_t max_bytes = 0;
  std::optional<CivilTime> now;
};

/// Variable scope: a for-loop iteration, macro call, with-block or the template's top level.
/// Scopes are shared so that a macro can keep the scope it was defined in.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
};

class Interp {
 public:
  Interp(const Program& program, Value context, const RenderSettings& settings);
  /// Renders the whole template; throws TemplateError (located) on failure.
  std::string run();

  Budget& budget() { return budget_; }
  /// Calls a callable value (an Undefined raises its error; anything else is a TypeError).
  Value call(const Value& fn, Args& args);
  /// Python/Jinja attribute access `obj.name` and subscription `obj[key]` (sandbox rules).
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  /// The items a for loop over `v` visits (list items, dict keys, string characters).
  std::vector<Value> iterate(const Value& v);
  /// Python `item in container`.
  bool contains(const Value& container, const Value& item);
  /// Runs a filter / test by name.
  Value filter(const std::string& name, const Value& operand, Args& args);
  bool test(const std::string& name, const Value& operand, Args& args);
  /// The civil time strftime_now formats.
  CivilTime now() const;

 private:
  enum class Flow { normal, break_, continue_ };
  struct DepthGuard;

  Flow exec(const Body& body);
  Flow exec(const Stmt& s);
  Flow exec_for(const Stmt& s);
  void exec_macro_def(const Stmt& s);
  std::string render_body(const Body& body, std::shared_ptr<Scope> scope);
  /// A new scope under `parent` holding the names that start out undefined in it.
  static std::shared_ptr<Scope> new_scope(std::shared_ptr<Scope> parent,
                                          const std::vector<std::string>& undefined_names);
  void assign(const Stmt& s, const Value& v);
  void emit(std::string_view text);

  Value eval(const Expr& e);
  Value eval_binop(const Expr& e);
  Value binop_values(BinOp op, const Value& a, const Value& b);
  Value eval_call(const Expr& e);
  Value eval_slice(const Value& obj, const Expr& slice);
  void eval_args(const Expr& e, size_t first, Args& out);
  bool compare_op(CmpOp op, const Value& a, const Value& b);
  Value lookup(const std::string& name) const;

  const Program& program_;
  RenderSettings settings_;
  Budget budget_;
  const std::unordered_map<std::string, Value>& globals_;
  std::shared_ptr<Scope> scope_;
  std::string* out_ = nullptr;
  Value slot_;
  Pos pos_;
  int call_depth_ = 0;
  int depth_ = 0;  // statements and expressions being evaluated, across macro calls
};

/// The global functions (range, dict, namespace, raise_exception, strftime_now, ...): built once,
/// stateless, shared by every rendering.
const std::unordered_map<std::string, Value>& template_globals();
/// The Python attribute `obj.name` of a str / dict / list: a bound method, or an Undefined
/// that fails when called for the methods the sandbox blocks (list.append, dict.update, ...);
/// nullopt when the type has no such attribute.
std::optional<Value> find_method(const Value& obj, const std::string& name);
/// Whether a filter of that name exists (the `filter` test).
bool is_filter_name(const std::string& name);
/// Binds call arguments to named parameters (positional first, then keywords); missing ones
/// stay Undefined. `what` names the callee in errors.
std::vector<Value> bind_args(const std::string& what, Args& args,
                             std::initializer_list<const char*> params, size_t required = 0);
/// Whether bind_args left parameter `v` unset.
inline bool unset(const Value& v) { return v.is_undefined(); }

}  // namespace wick::io::jinja
