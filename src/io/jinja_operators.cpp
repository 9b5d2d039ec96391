// Python's operators, slicing, attribute access and iteration for the Jinja evaluator, with
// the sandbox's rules (transformers' ImmutableSandboxedEnvironment): what `a + b`, `x[i:j]`,
// `obj.name`, `obj[key]`, `for x in v` and `x in v` do for every kind of value.
#include <cmath>
#include <limits>

#include "io/jinja_eval.h"
#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

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
