// Statements and expressions of the Jinja evaluator. Semantics follow Jinja2 as transformers
// configures it (ImmutableSandboxedEnvironment, default Undefined): scoping (a for-loop
// iteration is a scope; `if` is not), Undefined rules, macros; operators and attribute access
// are in jinja_operators.cpp.
#include "io/jinja_eval.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

// Macro recursion beyond this is a runaway template (Jinja itself would hit Python's limit).
constexpr int kMaxCallDepth = 64;
// Statements and expressions nested at run time, macro calls included: the parser bounds each
// template's nesting, but macros multiply it, and the C++ stack must hold it all.
constexpr int kMaxRuntimeDepth = 1000;

[[noreturn]] void type_error(const std::string& msg) { throw TemplateError(msg); }

}  // namespace

Interp::Interp(const Program& program, Value context, const RenderSettings& settings)
    : program_(program), settings_(settings), globals_(template_globals()) {
  budget_.max_steps = settings.max_steps;
  budget_.max_bytes = settings.max_bytes;
  auto ctx = std::make_shared<Scope>();
  if (context.is_dict())
    for (const auto& [k, v] : context.as_dict().entries) ctx->vars[k] = v;
  scope_ = new_scope(ctx, program.tmpl.undefined_at_start);
}

std::shared_ptr<Scope> Interp::new_scope(std::shared_ptr<Scope> parent,
                                         const std::vector<std::string>& undefined_names) {
  auto s = std::make_shared<Scope>();
  s->parent = std::move(parent);
  for (const auto& n : undefined_names) s->vars[n] = Value::undefined("'" + n + "' is undefined");
  return s;
}

std::string Interp::run() {
  std::string out;
  out_ = &out;
  try {
    exec(program_.tmpl.body);
  } catch (const TemplateError& e) {
    if (e.pos().line) throw;
    throw TemplateError(e.what(), pos_);
  }
  return out;
}

CivilTime Interp::now() const {
  if (settings_.now) return *settings_.now;
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec};
}

void Interp::emit(std::string_view text) {
  if (out_->size() + text.size() > budget_.max_bytes) budget_.fail_bytes();
  budget_.tick(text.size() / 64);
  out_->append(text);
}

Value Interp::lookup(const std::string& name) const {
  for (const Scope* s = scope_.get(); s; s = s->parent.get()) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  auto it = globals_.find(name);
  if (it != globals_.end()) return it->second;
  return Value::undefined("'" + name + "' is undefined");
}

// ---- statements ----

Interp::Flow Interp::exec(const Body& body) {
  for (const auto& s : body) {
    Flow f = exec(*s);
    if (f != Flow::normal) return f;
  }
  return Flow::normal;
}

std::string Interp::render_body(const Body& body, std::shared_ptr<Scope> scope) {
  std::string buf;
  std::string* saved_out = out_;
  auto saved_scope = scope_;
  out_ = &buf;
  scope_ = std::move(scope);
  struct Restore {
    Interp* self;
    std::string* out;
    std::shared_ptr<Scope> scope;
    ~Restore() {
      self->out_ = out;
      self->scope_ = std::move(scope);
    }
  } restore{this, saved_out, saved_scope};
  exec(body);
  return buf;
}

void Interp::assign(const Stmt& s, const Value& v) {
  if (!s.unpack) {
    scope_->vars[s.targets[0]] = v;
    return;
  }
  std::vector<Value> items = iterate(v);
  if (items.size() != s.targets.size())
    type_error("cannot unpack " + std::to_string(items.size()) + " values into " +
               std::to_string(s.targets.size()) + " names");
  for (size_t i = 0; i < items.size(); ++i) scope_->vars[s.targets[i]] = items[i];
}

struct Interp::DepthGuard {
  explicit DepthGuard(Interp& in) : in_(in) {
    if (++in_.depth_ > kMaxRuntimeDepth) {
      --in_.depth_;
      type_error("template evaluation nested deeper than " + std::to_string(kMaxRuntimeDepth) +
                 " levels (runaway macro recursion?)");
    }
  }
  ~DepthGuard() { --in_.depth_; }
  Interp& in_;
};

Interp::Flow Interp::exec(const Stmt& s) {
  DepthGuard guard(*this);
  budget_.tick();
  pos_ = s.pos;
  switch (s.kind) {
    case StmtKind::text: emit(s.text); return Flow::normal;
    case StmtKind::output: {
      Value v = eval(*s.exprs[0]);
      std::string text;
      append_str(text, v, budget_);
      emit(text);
      return Flow::normal;
    }
    case StmtKind::if_:
      for (size_t i = 0; i < s.exprs.size(); ++i)
        if (truthy(eval(*s.exprs[i]))) return exec(s.bodies[i]);
      if (s.bodies.size() > s.exprs.size()) return exec(s.bodies.back());
      return Flow::normal;
    case StmtKind::for_: return exec_for(s);
    case StmtKind::set: assign(s, eval(*s.exprs[0])); return Flow::normal;
    case StmtKind::set_attr: {
      Value target = lookup(s.targets[0]);
      Value v = eval(*s.exprs[0]);
      pos_ = s.pos;
      if (!target.is_ns())
        type_error("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
      // Keeping namespaces out of namespaces keeps values acyclic (no leaks, no endless repr).
      if (v.contains_ns()) type_error("storing a namespace inside a namespace is not supported");
      target.as_ns().attrs.set(s.text, std::move(v));
      return Flow::normal;
    }
    case StmtKind::set_block: {
      auto inner = new_scope(scope_, s.undefined_at_start[0]);
      Value v = Value::string(render_body(s.bodies[0], inner));
      if (s.exprs[0]) {
        slot_ = v;
        v = eval(*s.exprs[0]);
      }
      assign(s, v);
      return Flow::normal;
    }
    case StmtKind::macro: exec_macro_def(s); return Flow::normal;
    case StmtKind::break_: return Flow::break_;
    case StmtKind::continue_: return Flow::continue_;
    case StmtKind::with: {
      auto inner = new_scope(scope_, s.undefined_at_start[0]);
      for (size_t i = 0; i < s.targets.size(); ++i) inner->vars[s.targets[i]] = eval(*s.exprs[i]);
      auto saved = scope_;
      scope_ = inner;
      struct Restore {
        Interp* self;
        std::shared_ptr<Scope> scope;
        ~Restore() { self->scope_ = std::move(scope); }
      } restore{this, saved};
      return exec(s.bodies[0]);
    }
    case StmtKind::filter_block: {
      auto inner = new_scope(scope_, s.undefined_at_start[0]);
      slot_ = Value::string(render_body(s.bodies[0], inner));
      Value v = eval(*s.exprs[0]);
      std::string text;
      append_str(text, v, budget_);
      emit(text);
      return Flow::normal;
    }
    case StmtKind::generation: {
      auto inner = new_scope(scope_, s.undefined_at_start[0]);
      emit(render_body(s.bodies[0], inner));
      return Flow::normal;
    }
  }
  return Flow::normal;
}

Interp::Flow Interp::exec_for(const Stmt& s) {
  Value seq = eval(*s.exprs[0]);
  pos_ = s.pos;
  std::vector<Value> items = iterate(seq);
  auto outer = scope_;
  struct Restore {
    Interp* self;
    std::shared_ptr<Scope> scope;
    ~Restore() { self->scope_ = std::move(scope); }
  } restore{this, outer};

  if (s.exprs.size() > 1) {
    // `for x in xs if cond`: the condition sees the loop variables but not `loop`.
    std::vector<Value> kept;
    for (auto& item : items) {
      scope_ = std::make_shared<Scope>();
      scope_->parent = outer;
      assign(s, item);
      if (truthy(eval(*s.exprs[1]))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
    scope_ = outer;
  }

  const size_t n = items.size();
  // One function object serves every iteration: loop.cycle(a, b, ...) picks by loop.index0.
  auto index0 = std::make_shared<size_t>(0);
  auto cycle = std::make_shared<Function>();
  cycle->name = "loop.cycle";
  cycle->call = [index0](Interp&, Args& args) -> Value {
    if (!args.kw.empty()) type_error("loop.cycle() takes no keyword arguments");
    if (args.pos.empty()) type_error("no items for cycling given");
    return args.pos[*index0 % args.pos.size()];
  };
  Value cycle_fn = Value::function(cycle);

  for (size_t i = 0; i < n; ++i) {
    budget_.tick();
    *index0 = i;
    scope_ = new_scope(outer, s.undefined_at_start[0]);
    assign(s, items[i]);
    DictData loop;
    auto count = static_cast<int64_t>(n), idx = static_cast<int64_t>(i);
    auto& e = loop.entries;  // distinct keys, so no lookups needed
    e.reserve(12);
    e.emplace_back("index", Value::integer(idx + 1));
    e.emplace_back("index0", Value::integer(idx));
    e.emplace_back("revindex", Value::integer(count - idx));
    e.emplace_back("revindex0", Value::integer(count - idx - 1));
    e.emplace_back("first", Value::boolean(i == 0));
    e.emplace_back("last", Value::boolean(i + 1 == n));
    e.emplace_back("length", Value::integer(count));
    e.emplace_back("depth", Value::integer(1));
    e.emplace_back("depth0", Value::integer(0));
    if (i > 0) e.emplace_back("previtem", items[i - 1]);
    if (i + 1 < n) e.emplace_back("nextitem", items[i + 1]);
    e.emplace_back("cycle", cycle_fn);
    scope_->vars["loop"] = Value::dict(std::move(loop));
    Flow f = exec(s.bodies[0]);
    if (f == Flow::break_) break;
  }
  scope_ = outer;
  if (n == 0 && !s.bodies[1].empty()) {
    scope_ = new_scope(outer, s.undefined_at_start[1]);
    return exec(s.bodies[1]);
  }
  return Flow::normal;
}

void Interp::exec_macro_def(const Stmt& s) {
  const Stmt* def = &s;
  std::weak_ptr<Scope> closure = scope_;
  auto fn = std::make_shared<Function>();
  fn->name = s.text;
  fn->call = [def, closure](Interp& in, Args& args) -> Value {
    auto parent = closure.lock();
    if (!parent) type_error("macro '" + def->text + "' called after its scope ended");
    if (++in.call_depth_ > kMaxCallDepth) {
      --in.call_depth_;
      type_error("macro calls nested deeper than " + std::to_string(kMaxCallDepth));
    }
    struct Depth {
      Interp& in;
      ~Depth() { --in.call_depth_; }
    } depth{in};
    auto scope = new_scope(parent, def->undefined_at_start[0]);
    const size_t n = def->targets.size();
    if (args.pos.size() > n && !def->catch_varargs)
      type_error("macro '" + def->text + "' takes not more than " + std::to_string(n) +
                 " argument(s)");
    std::vector<bool> bound(n, false);
    for (size_t i = 0; i < n && i < args.pos.size(); ++i) {
      scope->vars[def->targets[i]] = args.pos[i];
      bound[i] = true;
    }
    DictData extra_kw;
    for (auto& [k, v] : args.kw) {
      bool found = false;
      for (size_t i = 0; i < n; ++i)
        if (def->targets[i] == k) {
          if (bound[i]) type_error("macro '" + def->text + "' got multiple values for '" + k + "'");
          scope->vars[k] = v;
          bound[i] = found = true;
        }
      if (!found) {
        if (!def->catch_kwargs)
          type_error("macro '" + def->text + "' takes no keyword argument '" + k + "'");
        extra_kw.set(k, v);
      }
    }
    std::vector<Value> extra_pos;
    for (size_t i = n; i < args.pos.size(); ++i) extra_pos.push_back(args.pos[i]);
    scope->vars["varargs"] = Value::list(std::move(extra_pos), true);
    scope->vars["kwargs"] = Value::dict(std::move(extra_kw));
    // Defaults are evaluated at call time inside the macro's scope, in parameter order.
    auto saved = in.scope_;
    in.scope_ = scope;
    struct Restore {
      Interp& in;
      std::shared_ptr<Scope> scope;
      ~Restore() { in.scope_ = std::move(scope); }
    } restore{in, saved};
    for (size_t i = 0; i < n; ++i) {
      if (bound[i]) continue;
      scope->vars[def->targets[i]] =
          def->exprs[i] ? in.eval(*def->exprs[i])
                        : Value::undefined("parameter '" + def->targets[i] + "' was not provided");
    }
    return Value::string(in.render_body(def->bodies[0], scope));
  };
  scope_->vars[s.text] = Value::function(std::move(fn));
}

// ---- expressions ----

void Interp::eval_args(const Expr& e, size_t first, Args& out) {
  for (size_t i = first; i < e.args.size(); ++i) out.pos.push_back(eval(*e.args[i]));
  for (const auto& [k, v] : e.kwargs) out.kw.emplace_back(k, eval(*v));
}

Value Interp::eval(const Expr& e) {
  DepthGuard guard(*this);
  budget_.tick();
  switch (e.kind) {
    case ExprKind::constant: return e.value;
    case ExprKind::name: return lookup(e.name);
    case ExprKind::list:
    case ExprKind::tuple: {
      std::vector<Value> items;
      items.reserve(e.args.size());
      for (const auto& a : e.args) items.push_back(eval(*a));
      pos_ = e.pos;
      return Value::list(std::move(items), e.kind == ExprKind::tuple);
    }
    case ExprKind::dict: {
      DictData d;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i]);
        Value v = eval(*e.args[i + 1]);
        pos_ = e.args[i]->pos;
        if (!k.is_string()) type_error("dict keys must be strings, got " + type_name(k));
        d.set(k.as_string(), std::move(v));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::getattr: {
      Value obj = eval(*e.args[0]);
      pos_ = e.pos;
      return getattr(obj, e.name);
    }
    case ExprKind::getitem: {
      Value obj = eval(*e.args[0]);
      if (e.args[1]->kind == ExprKind::slice) return eval_slice(obj, *e.args[1]);
      Value key = eval(*e.args[1]);
      pos_ = e.pos;
      return getitem(obj, key);
    }
    case ExprKind::slice: type_error("a slice is only valid inside []");
    case ExprKind::call: return eval_call(e);
    case ExprKind::filter: {
      Value operand = eval(*e.args[0]);
      Args args;
      eval_args(e, 1, args);
      pos_ = e.pos;
      return filter(e.name, operand, args);
    }
    case ExprKind::test: {
      Value operand = eval(*e.args[0]);
      Args args;
      eval_args(e, 1, args);
      pos_ = e.pos;
      bool r = test(e.name, operand, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::not_: return Value::boolean(!truthy(eval(*e.args[0])));
    case ExprKind::neg:
    case ExprKind::pos: {
      Value v = eval(*e.args[0]);
      pos_ = e.pos;
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number())
        type_error(std::string("bad operand type for unary ") +
                   (e.kind == ExprKind::neg ? "-" : "+") + ": '" + type_name(v) + "'");
      if (e.kind == ExprKind::pos) return v.is_bool() ? Value::integer(v.as_int()) : v;
      if (v.is_float()) return Value::floating(-v.as_float());
      if (v.as_int() == std::numeric_limits<int64_t>::min())
        type_error("integer overflow (wick's template integers are 64-bit)");
      return Value::integer(-v.as_int());
    }
    case ExprKind::binop: return eval_binop(e);
    case ExprKind::compare: {
      Value left = eval(*e.args[0]);
      for (size_t i = 0; i < e.cmp.size(); ++i) {
        Value right = eval(*e.args[i + 1]);
        pos_ = e.pos;
        if (!compare_op(e.cmp[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case ExprKind::and_: {
      Value l = eval(*e.args[0]);
      return truthy(l) ? eval(*e.args[1]) : l;
    }
    case ExprKind::or_: {
      Value l = eval(*e.args[0]);
      return truthy(l) ? l : eval(*e.args[1]);
    }
    case ExprKind::cond:
      if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
      if (e.args[2]) return eval(*e.args[2]);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.pos.line) +
                              " evaluated to false and no else section was defined.");
    case ExprKind::slot: return slot_;
  }
  return Value();
}

Value Interp::eval_call(const Expr& e) {
  Value fn = eval(*e.args[0]);
  Args args;
  eval_args(e, 1, args);
  pos_ = e.pos;
  return call(fn, args);
}

Value Interp::call(const Value& fn, Args& args) {
  budget_.tick();
  if (fn.is_function()) return fn.as_function().call(*this, args);
  if (fn.is_undefined()) fail_undefined(fn);
  type_error("'" + type_name(fn) + "' object is not callable");
}

}  // namespace wick::io::jinja
