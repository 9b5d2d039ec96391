// Statements, expressions, attribute access and the Python operators. Semantics follow Jinja2
// as transformers configures it (ImmutableSandboxedEnvironment, default Undefined): scoping
// (a for-loop iteration is a scope; `if` is not), Undefined rules, Python arithmetic.
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

[[noreturn]] void overflow() { type_error("integer overflow (wick's template integers are 64-bit)"); }

int64_t add_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
int64_t sub_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
int64_t mul_i(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

Value repeat(const Value& seq, int64_t n, Budget& budget) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.as_list().tuple);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && static_cast<uint64_t>(n) > budget.max_bytes / s.size()) budget.fail_bytes();
    budget.produce(s.size() * static_cast<size_t>(n));
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return Value::string(std::move(out));
  }
  const auto& items = seq.items();
  if (!items.empty() && static_cast<uint64_t>(n) > budget.max_bytes / items.size())
    budget.fail_bytes();
  budget.tick(items.size() * static_cast<size_t>(n));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.as_list().tuple);
}

// CPython's float floor division and modulo (sign of the result follows the divisor).
double py_fmod(double x, double y) {
  double m = std::fmod(x, y);
  if (m != 0) {
    if ((y < 0) != (m < 0)) m += y;
  } else {
    m = std::copysign(0.0, y);
  }
  return m;
}
double py_floordiv(double x, double y) {
  double m = std::fmod(x, y);
  double d = (x - m) / y;
  if (m != 0 && ((y < 0) != (m < 0))) d -= 1.0;
  if (d == 0) return std::copysign(0.0, x / y);
  double f = std::floor(d);
  if (d - f > 0.5) f += 1.0;
  return f;
}

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
      return Value::integer(sub_i(0, v.as_int()));
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

Value Interp::eval_slice(const Value& obj, const Expr& slice) {
  std::optional<int64_t> bound[3];
  for (int i = 0; i < 3; ++i) {
    if (!slice.args[static_cast<size_t>(i)]) continue;
    Value v = eval(*slice.args[static_cast<size_t>(i)]);
    if (v.is_none()) continue;
    if (!v.is_integral()) {
      pos_ = slice.pos;
      if (v.is_undefined()) fail_undefined(v);
      type_error("slice indices must be integers or None");
    }
    bound[i] = v.as_int();
  }
  pos_ = slice.pos;
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_string()) {
    auto cps = code_points(obj.as_string());
    auto b = py_slice(static_cast<int64_t>(cps.size()), bound[0], bound[1], bound[2]);
    std::string out;
    for (int64_t k = 0, i = b.start; k < b.count; ++k, i += b.step) {
      const auto& c = cps[static_cast<size_t>(i)];
      out.append(obj.as_string(), c.offset, c.size);
    }
    budget_.produce(out.size());
    return Value::string(std::move(out));
  }
  if (is_plain_sequence(obj) || (obj.is_list() && obj.as_list().lazy == Lazy::range)) {
    const auto& items = obj.items();
    auto b = py_slice(static_cast<int64_t>(items.size()), bound[0], bound[1], bound[2]);
    std::vector<Value> out;
    out.reserve(static_cast<size_t>(b.count));
    for (int64_t k = 0, i = b.start; k < b.count; ++k, i += b.step)
      out.push_back(items[static_cast<size_t>(i)]);
    budget_.tick(out.size());
    return Value::list(std::move(out), obj.as_list().tuple);
  }
  if (obj.is_list()) type_error("'" + type_name(obj) + "' object is not subscriptable");
  // Jinja compiles slices to plain Python subscription, so this is the TypeError unfiltered.
  type_error("'" + type_name(obj) + "' object is not subscriptable with a slice");
}

bool Interp::compare_op(CmpOp op, const Value& a, const Value& b) {
  switch (op) {
    case CmpOp::eq: return equals(a, b, budget_);
    case CmpOp::ne: return !equals(a, b, budget_);
    case CmpOp::lt: return compare(a, b, budget_, "<") == -1;
    case CmpOp::le: {
      int c = compare(a, b, budget_, "<=");
      return c == -1 || c == 0;
    }
    case CmpOp::gt: return compare(a, b, budget_, ">") == 1;
    case CmpOp::ge: {
      int c = compare(a, b, budget_, ">=");
      return c == 1 || c == 0;
    }
    case CmpOp::in: return contains(b, a);
    case CmpOp::not_in: return !contains(b, a);
  }
  return false;
}

Value Interp::eval_binop(const Expr& e) {
  Value a = eval(*e.args[0]);
  Value b = eval(*e.args[1]);
  pos_ = e.pos;
  // Jinja writes a folded `-2` into Python source without parentheses, so `-2 ** x` (x not
  // constant) is evaluated as -(2 ** x); a fully constant `-2 ** 2` is folded correctly.
  if (e.op == BinOp::pow && e.args[0]->folded_negative && e.args[1]->kind != ExprKind::constant &&
      b.is_number()) {
    auto negate = [](const Value& v) {
      return v.is_float() ? Value::floating(-v.as_float()) : Value::integer(sub_i(0, v.as_int()));
    };
    return negate(binop_values(BinOp::pow, negate(a), b));
  }
  return binop_values(e.op, a, b);
}

Value Interp::binop_values(BinOp op, const Value& a, const Value& b) {
  if (op == BinOp::concat) {
    std::string s;
    append_str(s, a, budget_);
    append_str(s, b, budget_);
    budget_.produce(s.size());
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  static const char* names[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
  auto unsupported = [&]() -> Value {
    type_error(std::string("unsupported operand type(s) for ") + names[static_cast<int>(op)] +
               ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (op == BinOp::add) {
    if (a.is_string() && b.is_string()) {
      budget_.produce(a.as_string().size() + b.as_string().size());
      return Value::string(a.as_string() + b.as_string());
    }
    if (is_plain_sequence(a) && is_plain_sequence(b) && a.as_list().tuple == b.as_list().tuple) {
      std::vector<Value> out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      budget_.tick(out.size());
      return Value::list(std::move(out), a.as_list().tuple);
    }
  }
  if (op == BinOp::mul) {
    if ((a.is_string() || is_plain_sequence(a)) && b.is_integral())
      return repeat(a, b.as_int(), budget_);
    if ((b.is_string() || is_plain_sequence(b)) && a.is_integral())
      return repeat(b, a.as_int(), budget_);
  }
  if (op == BinOp::mod && a.is_string())
    type_error("string formatting with '%' is not supported");
  if (!a.is_number() || !b.is_number()) return unsupported();

  if (a.is_integral() && b.is_integral() && op != BinOp::div) {
    int64_t x = a.as_int(), y = b.as_int();
    switch (op) {
      case BinOp::add: return Value::integer(add_i(x, y));
      case BinOp::sub: return Value::integer(sub_i(x, y));
      case BinOp::mul: return Value::integer(mul_i(x, y));
      case BinOp::floordiv:
      case BinOp::mod: {
        if (y == 0) type_error("integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) --q, m += y;
        return Value::integer(op == BinOp::floordiv ? q : m);
      }
      case BinOp::pow: {
        if (y < 0) {
          if (x == 0) type_error("0.0 cannot be raised to a negative power");
          return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
        }
        int64_t result = 1, base = x;
        for (int64_t k = y; k > 0; k >>= 1) {
          budget_.tick();
          if (k & 1) result = mul_i(result, base);
          if (k > 1) base = mul_i(base, base);
        }
        return Value::integer(result);
      }
      default: break;
    }
  }
  double x = a.as_float(), y = b.as_float();
  switch (op) {
    case BinOp::add: return Value::floating(x + y);
    case BinOp::sub: return Value::floating(x - y);
    case BinOp::mul: return Value::floating(x * y);
    case BinOp::div:
      if (y == 0) type_error("division by zero");
      return Value::floating(x / y);
    case BinOp::floordiv:
      if (y == 0) type_error("float floor division by zero");
      return Value::floating(py_floordiv(x, y));
    case BinOp::mod:
      if (y == 0) type_error("float modulo");
      return Value::floating(py_fmod(x, y));
    case BinOp::pow:
      if (x == 0 && y < 0) type_error("0.0 cannot be raised to a negative power");
      return Value::floating(std::pow(x, y));
    default: return unsupported();
  }
}

// ---- attribute access and iteration ----

Value Interp::getattr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::undefined: fail_undefined(obj);
    case Value::Kind::dict:
      // Python attributes first: `message.items` is the method even when a key "items" exists.
      if (auto m = find_method(obj, name)) return *m;
      if (const Value* v = obj.as_dict().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    case Value::Kind::ns:
      if (const Value* v = obj.as_ns().attrs.find(name)) return *v;
      return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    case Value::Kind::string:
    case Value::Kind::list:
      if (auto m = find_method(obj, name)) return *m;
      break;
    default: break;
  }
  return Value::undefined("'" + type_name(obj) + " object' has no attribute '" + name + "'");
}

Value Interp::getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = obj.as_dict().find(key.as_string())) return *v;
      // Python falls back to the attribute: d['items'] is the method when there is no key.
      if (auto m = find_method(obj, key.as_string())) return *m;
    }
    std::string shown;
    append_repr(shown, key, budget_);
    return Value::undefined("'dict object' has no attribute " + shown);
  }
  bool indexable = is_plain_sequence(obj) || (obj.is_list() && obj.as_list().lazy == Lazy::range);
  if ((indexable || obj.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      auto n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      auto cps = code_points(obj.as_string());
      auto n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) {
        const auto& c = cps[static_cast<size_t>(i)];
        return Value::string(obj.as_string().substr(c.offset, c.size));
      }
    }
    return Value::undefined("'" + type_name(obj) + " object' has no element " +
                            std::to_string(key.as_int()));
  }
  if (key.is_string()) {
    if (obj.is_ns()) return getattr(obj, key.as_string());
    if (indexable || obj.is_string())
      if (auto m = find_method(obj, key.as_string())) return *m;
  }
  std::string shown;
  append_repr(shown, key, budget_);
  return Value::undefined("'" + type_name(obj) + " object' has no attribute " + shown);
}

std::vector<Value> Interp::iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined: return {};
    case Value::Kind::list:
      if (v.as_list().deferred_error) throw TemplateError(*v.as_list().deferred_error);
      budget_.tick(v.items().size());
      return v.items();
    case Value::Kind::dict: {
      std::vector<Value> keys;
      keys.reserve(v.as_dict().size());
      for (const auto& [k, item] : v.as_dict().entries) keys.push_back(Value::string(k));
      budget_.tick(keys.size());
      return keys;
    }
    case Value::Kind::string: {
      std::vector<Value> chars;
      const std::string& s = v.as_string();
      for (const auto& c : code_points(s)) chars.push_back(Value::string(s.substr(c.offset, c.size)));
      budget_.tick(chars.size());
      return chars;
    }
    default: type_error("'" + type_name(v) + "' object is not iterable");
  }
}

bool Interp::contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::undefined: return false;
    case Value::Kind::string:
      if (item.is_undefined()) fail_undefined(item);
      if (!item.is_string())
        type_error("'in <string>' requires string as left operand, not " + type_name(item));
      budget_.tick(container.as_string().size() / 64);
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::list:
      for (const auto& x : container.items())
        if (equals(x, item, budget_)) return true;
      // A generator that failed part way raises once the search reaches the failure.
      if (container.as_list().deferred_error) throw TemplateError(*container.as_list().deferred_error);
      return false;
    case Value::Kind::dict:
      if (item.is_list() && !item.as_list().tuple) type_error("unhashable type: 'list'");
      if (item.is_dict()) type_error("unhashable type: 'dict'");
      return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
    default: type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace wick::io::jinja
