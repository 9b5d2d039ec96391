// Jinja's builtin tests (`x is defined`, `x is divisibleby 3`, ...) with Jinja 3.1's semantics,
// which are Python's: `is number` holds for bools, `is iterable` for Undefined, and so on.
#include <cmath>
#include <unordered_map>

#include "io/jinja_eval.h"
#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

using TestFn = bool (*)(Interp&, const Value&, Args&);

[[noreturn]] void fail(const std::string& msg) { throw TemplateError(msg); }

// ---- tests ----

bool t_defined(Interp&, const Value& v, Args& a) {
  bind_args("defined", a, {});
  return !v.is_undefined();
}
bool t_undefined(Interp&, const Value& v, Args& a) {
  bind_args("undefined", a, {});
  return v.is_undefined();
}
bool t_none(Interp&, const Value& v, Args& a) {
  bind_args("none", a, {});
  return v.is_none();
}
bool t_boolean(Interp&, const Value& v, Args& a) {
  bind_args("boolean", a, {});
  return v.is_bool();
}
bool t_true(Interp&, const Value& v, Args& a) {
  bind_args("true", a, {});
  return v.is_bool() && v.as_bool();
}
bool t_false(Interp&, const Value& v, Args& a) {
  bind_args("false", a, {});
  return v.is_bool() && !v.as_bool();
}
bool t_integer(Interp&, const Value& v, Args& a) {
  bind_args("integer", a, {});
  return v.is_int();
}
bool t_float(Interp&, const Value& v, Args& a) {
  bind_args("float", a, {});
  return v.is_float();
}
bool t_number(Interp&, const Value& v, Args& a) {
  bind_args("number", a, {});
  return v.is_number();
}
bool t_string(Interp&, const Value& v, Args& a) {
  bind_args("string", a, {});
  return v.is_string();
}
bool t_mapping(Interp&, const Value& v, Args& a) {
  bind_args("mapping", a, {});
  return v.is_dict();
}
bool t_iterable(Interp&, const Value& v, Args& a) {
  bind_args("iterable", a, {});
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_sequence(Interp&, const Value& v, Args& a) {
  bind_args("sequence", a, {});
  bool seq_list = is_plain_sequence(v) || (v.is_list() && v.as_list().lazy == Lazy::range);
  return v.is_undefined() || v.is_string() || seq_list || v.is_dict();
}
bool t_callable(Interp&, const Value& v, Args& a) {
  bind_args("callable", a, {});
  // Jinja's Undefined defines __call__ (to raise), so Python calls it callable.
  return v.is_function() || v.is_undefined();
}
bool t_escaped(Interp&, const Value&, Args& a) {
  bind_args("escaped", a, {});
  return false;
}

bool cmp_test(Interp& in, const Value& v, Args& a, const char* name, CmpOp op) {
  auto p = bind_args(name, a, {"other"}, 1);
  switch (op) {
    case CmpOp::eq: return equals(v, p[0], in.budget());
    case CmpOp::ne: return !equals(v, p[0], in.budget());
    case CmpOp::lt: return compare(v, p[0], in.budget(), "<") == -1;
    case CmpOp::le: {
      int c = compare(v, p[0], in.budget(), "<=");
      return c == -1 || c == 0;
    }
    case CmpOp::gt: return compare(v, p[0], in.budget(), ">") == 1;
    case CmpOp::ge: {
      int c = compare(v, p[0], in.budget(), ">=");
      return c == 1 || c == 0;
    }
    default: return false;
  }
}
bool t_eq(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "eq", CmpOp::eq); }
bool t_ne(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "ne", CmpOp::ne); }
bool t_lt(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "lt", CmpOp::lt); }
bool t_le(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "le", CmpOp::le); }
bool t_gt(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "gt", CmpOp::gt); }
bool t_ge(Interp& in, const Value& v, Args& a) { return cmp_test(in, v, a, "ge", CmpOp::ge); }

bool t_in(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("in", a, {"seq"}, 1);
  return in.contains(p[0], v);
}

// Python's `value % num` (these tests are written with it), for ints and floats.
double py_mod(const Value& v, const Value& num, const char* test) {
  for (const Value* x : {&v, &num}) {
    if (x->is_undefined()) fail_undefined(*x);
    if (!x->is_number()) fail(std::string("the '") + test + "' test needs numbers, got " + type_name(*x));
  }
  if (v.is_integral() && num.is_integral()) {
    int64_t d = num.as_int();
    if (d == 0) fail("integer division or modulo by zero");
    if (d == -1) return 0;
    int64_t m = v.as_int() % d;
    if (m != 0 && ((m < 0) != (d < 0))) m += d;
    return static_cast<double>(m);
  }
  double x = v.as_float(), d = num.as_float();
  if (d == 0) fail("float modulo");
  double m = std::fmod(x, d);
  if (m != 0 && ((m < 0) != (d < 0))) m += d;
  return m;
}
bool t_odd(Interp&, const Value& v, Args& a) {
  bind_args("odd", a, {});
  return py_mod(v, Value::integer(2), "odd") == 1;
}
bool t_even(Interp&, const Value& v, Args& a) {
  bind_args("even", a, {});
  return py_mod(v, Value::integer(2), "even") == 0;
}
bool t_divisibleby(Interp&, const Value& v, Args& a) {
  auto p = bind_args("divisibleby", a, {"num"}, 1);
  return py_mod(v, p[0], "divisibleby") == 0;
}
bool t_lower(Interp& in, const Value& v, Args& a) {
  bind_args("lower", a, {});
  return py_is(to_str(v, in.budget()), "islower");
}
bool t_upper(Interp& in, const Value& v, Args& a) {
  bind_args("upper", a, {});
  return py_is(to_str(v, in.budget()), "isupper");
}
bool t_sameas(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("sameas", a, {"other"}, 1);
  const Value& o = p[0];
  if (v.kind() != o.kind()) return false;
  switch (v.kind()) {
    case Value::Kind::none: return true;
    case Value::Kind::boolean: return v.as_bool() == o.as_bool();
    // CPython shares small ints; anything else compares by identity.
    case Value::Kind::integer:
      return v.as_int() == o.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case Value::Kind::undefined: return false;
    default: return v.identity() == o.identity();
  }
  (void)in;
}
bool t_filter(Interp&, const Value& v, Args& a) {
  bind_args("filter", a, {});
  return v.is_string() && is_filter_name(v.as_string());
}
bool t_test(Interp&, const Value& v, Args& a);

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined},     {"undefined", t_undefined}, {"none", t_none},
      {"boolean", t_boolean},     {"true", t_true},           {"false", t_false},
      {"integer", t_integer},     {"float", t_float},         {"number", t_number},
      {"string", t_string},       {"mapping", t_mapping},     {"iterable", t_iterable},
      {"sequence", t_sequence},   {"callable", t_callable},   {"escaped", t_escaped},
      {"eq", t_eq},               {"equalto", t_eq},          {"==", t_eq},
      {"ne", t_ne},               {"!=", t_ne},               {"lt", t_lt},
      {"lessthan", t_lt},         {"<", t_lt},                {"le", t_le},
      {"<=", t_le},               {"gt", t_gt},               {"greaterthan", t_gt},
      {">", t_gt},                {"ge", t_ge},               {">=", t_ge},
      {"in", t_in},               {"odd", t_odd},             {"even", t_even},
      {"divisibleby", t_divisibleby}, {"lower", t_lower},     {"upper", t_upper},
      {"sameas", t_sameas},       {"filter", t_filter},       {"test", t_test},
  };
  return table;
}

bool t_test(Interp&, const Value& v, Args& a) {
  bind_args("test", a, {});
  return v.is_string() && tests().count(v.as_string());
}

}  // namespace

bool Interp::test(const std::string& name, const Value& operand, Args& args) {
  budget_.tick();
  auto it = tests().find(name);
  if (it == tests().end()) throw TemplateError("no test named '" + name + "'");
  return it->second(*this, operand, args);
}


}  // namespace wick::io::jinja
