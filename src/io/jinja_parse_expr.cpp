// Expressions of the Jinja parser, one function per precedence level as in jinja2/parser.py.
#include <climits>

#include "io/jinja_parser.h"

namespace wick::io::jinja {

bool Parser::is_tuple_end(std::initializer_list<const char*> extra_end) const {
  if (cur().type == Tok::var_end || cur().type == Tok::block_end || is_op(")")) return true;
  for (const char* e : extra_end)
    if (is_name(e)) return true;
  return false;
}

ExprPtr Parser::parse_tuple(bool with_condexpr, bool explicit_parens, std::initializer_list<const char*> extra_end) {
  Pos pos = cur().pos;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(parse_expression(with_condexpr));
    if (is_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) fail("expected an expression, got " + describe(cur()));
  }
  auto e = node(ExprKind::tuple, pos);
  e->args = std::move(items);
  return seal(std::move(e));
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  return with_condexpr ? parse_condexpr() : parse_or();
}

ExprPtr Parser::parse_condexpr() {
  Depth guard(*this);
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    Pos pos = next().pos;
    auto e = node(ExprKind::cond, pos);
    e->args.push_back(parse_or());
    e->args.push_back(std::move(expr));
    e->args.push_back(skip_name("else") ? parse_condexpr() : nullptr);
    expr = seal(std::move(e));
  }
  return expr;
}

ExprPtr Parser::binary(ExprKind kind, Pos pos, ExprPtr a, ExprPtr b) {
  auto e = node(kind, pos);
  e->args.push_back(std::move(a));
  e->args.push_back(std::move(b));
  return seal(std::move(e));
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    Pos pos = next().pos;
    left = binary(ExprKind::or_, pos, std::move(left), parse_and());
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    Pos pos = next().pos;
    left = binary(ExprKind::and_, pos, std::move(left), parse_not());
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    Depth guard(*this);
    auto e = node(ExprKind::not_, next().pos);
    e->args.push_back(parse_not());
    return seal(std::move(e));
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  Pos pos = cur().pos;
  ExprPtr first = parse_math1();
  std::unique_ptr<Expr> cmp;
  auto add = [&](CmpOp op) {
    if (!cmp) {
      cmp = node(ExprKind::compare, pos);
      cmp->args.push_back(std::move(first));
    }
    cmp->cmp.push_back(op);
    cmp->args.push_back(parse_math1());
  };
  while (true) {
    if (cur().type == Tok::op) {
      const std::string& t = cur().text;
      CmpOp op;
      if (t == "==") op = CmpOp::eq;
      else if (t == "!=") op = CmpOp::ne;
      else if (t == "<") op = CmpOp::lt;
      else if (t == "<=") op = CmpOp::le;
      else if (t == ">") op = CmpOp::gt;
      else if (t == ">=") op = CmpOp::ge;
      else break;
      next();
      add(op);
    } else if (is_name("in")) {
      next();
      add(CmpOp::in);
    } else if (is_name("not") && look().type == Tok::name && look().text == "in") {
      next();
      next();
      add(CmpOp::not_in);
    } else {
      break;
    }
  }
  return cmp ? seal(std::move(cmp)) : std::move(first);
}

ExprPtr Parser::binop(BinOp op, Pos pos, ExprPtr a, ExprPtr b) {
  auto e = binary(ExprKind::binop, pos, std::move(a), std::move(b));
  e->op = op;
  return e;
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    BinOp op = cur().text == "+" ? BinOp::add : BinOp::sub;
    Pos pos = next().pos;
    left = binop(op, pos, std::move(left), parse_concat());
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    Pos pos = next().pos;
    left = binop(BinOp::concat, pos, std::move(left), parse_math2());
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const std::string& t = cur().text;
    BinOp op = t == "*" ? BinOp::mul : t == "/" ? BinOp::div : t == "//" ? BinOp::floordiv : BinOp::mod;
    Pos pos = next().pos;
    left = binop(op, pos, std::move(left), parse_pow());
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    Pos pos = next().pos;
    left = binop(BinOp::pow, pos, std::move(left), parse_unary(true));
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  Depth guard(*this);
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    bool neg = cur().text == "-";
    e = node(neg ? ExprKind::neg : ExprKind::pos, next().pos);
    e->args.push_back(parse_unary(false));
    const Expr& operand = *e->args[0];
    // Jinja folds `-<number literal>` into a constant before generating Python code; keep
    // the mark, because that constant then loses its parentheses before `**`.
    if (neg && operand.kind == ExprKind::constant && operand.value.is_number() &&
        !(operand.value.is_int() && operand.value.as_int() == INT64_MIN)) {
      auto c = node(ExprKind::constant, e->pos);
      const Value& v = operand.value;
      c->value = v.is_float() ? Value::floating(-v.as_float()) : Value::integer(-v.as_int());
      c->folded_negative = true;
      e = std::move(c);
    } else {
      e = seal(std::move(e));
    }
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  Pos pos = t.pos;
  ExprPtr e;
  switch (t.type) {
    case Tok::name: {
      e = node(ExprKind::constant, pos);
      if (t.text == "true" || t.text == "True") {
        e->value = Value::boolean(true);
      } else if (t.text == "false" || t.text == "False") {
        e->value = Value::boolean(false);
      } else if (t.text == "none" || t.text == "None") {
        e->value = Value::none();
      } else {
        e->kind = ExprKind::name;
        e->name = t.text;
      }
      next();
      return e;
    }
    case Tok::string: {
      // Adjacent string literals concatenate, as in Python.
      std::string s;
      while (cur().type == Tok::string) s += next().text;
      e = node(ExprKind::constant, pos);
      e->value = Value::string(std::move(s));
      return e;
    }
    case Tok::integer:
      e = node(ExprKind::constant, pos);
      e->value = Value::integer(t.ival);
      next();
      return e;
    case Tok::floating:
      e = node(ExprKind::constant, pos);
      e->value = Value::floating(t.fval);
      next();
      return e;
    case Tok::op:
      if (t.text == "(") {
        next();
        e = parse_tuple(true, true, {});
        expect_op(")");
        return e;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default: break;
  }
  fail("unexpected " + describe(t));
}

ExprPtr Parser::parse_list() {
  auto e = node(ExprKind::list, next().pos);
  while (!is_op("]")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("]")) break;
    e->args.push_back(parse_expression(true));
  }
  expect_op("]");
  return seal(std::move(e));
}

ExprPtr Parser::parse_dict() {
  auto e = node(ExprKind::dict, next().pos);
  while (!is_op("}")) {
    if (!e->args.empty()) expect_op(",");
    if (is_op("}")) break;
    e->args.push_back(parse_expression(true));
    expect_op(":");
    e->args.push_back(parse_expression(true));
  }
  expect_op("}");
  return seal(std::move(e));
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      e = parse_subscript(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      e = parse_filter(std::move(e), false);
    } else if (is_name("is")) {
      e = parse_test(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr obj) {
  const Token& t = next();
  Pos pos = t.pos;
  if (t.text == ".") {
    const Token& a = cur();
    if (a.type == Tok::name) {
      auto e = node(ExprKind::getattr, pos);
      e->name = next().text;
      e->args.push_back(std::move(obj));
      return seal(std::move(e));
    }
    if (a.type != Tok::integer) fail("expected a name or number after '.'");
    auto key = node(ExprKind::constant, a.pos);
    key->value = Value::integer(a.ival);
    next();
    return binary(ExprKind::getitem, pos, std::move(obj), std::move(key));
  }
  std::vector<ExprPtr> keys;
  while (!is_op("]")) {
    if (!keys.empty()) expect_op(",");
    keys.push_back(parse_subscribed());
  }
  expect_op("]");
  ExprPtr key;
  if (keys.size() == 1) {
    key = std::move(keys[0]);
  } else {
    key = node(ExprKind::tuple, pos);
    key->args = std::move(keys);
    key = seal(std::move(key));
  }
  return binary(ExprKind::getitem, pos, std::move(obj), std::move(key));
}

ExprPtr Parser::parse_subscribed() {
  Pos pos = cur().pos;
  std::vector<ExprPtr> parts;
  if (is_op(":")) {
    next();
    parts.push_back(nullptr);
  } else {
    ExprPtr e = parse_expression(true);
    if (!is_op(":")) return e;
    next();
    parts.push_back(std::move(e));
  }
  auto open_end = [&] { return is_op("]") || is_op(","); };
  if (is_op(":") || open_end()) {
    parts.push_back(nullptr);
  } else {
    parts.push_back(parse_expression(true));
  }
  if (skip_op(":")) {
    parts.push_back(open_end() ? nullptr : parse_expression(true));
  } else {
    parts.push_back(nullptr);
  }
  auto e = node(ExprKind::slice, pos);
  e->args = std::move(parts);
  return seal(std::move(e));
}

void Parser::parse_call_args(Expr& e) {
  expect_op("(");
  bool need_comma = false;
  while (!is_op(")")) {
    if (need_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
    if (cur().type == Tok::name && look().type == Tok::op && look().text == "=") {
      std::string key = next().text;
      next();
      e.kwargs.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!e.kwargs.empty()) fail("positional argument follows keyword argument");
      e.args.push_back(parse_expression(true));
    }
    need_comma = true;
  }
  expect_op(")");
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  // Errors raised by the call (raise_exception) point at the start of the callee.
  auto e = node(ExprKind::call, callee->pos);
  e->args.push_back(std::move(callee));
  parse_call_args(*e);
  return seal(std::move(e));
}

std::string Parser::dotted_name() {
  std::string name = expect_name();
  while (skip_op(".")) name.append(".").append(expect_name());
  return name;
}

// `| name(args) | name ...`; with `inline_first` the first filter has no leading pipe.
ExprPtr Parser::parse_filter(ExprPtr operand, bool inline_first) {
  bool first = true;
  while (is_op("|") || (first && inline_first)) {
    if (!(first && inline_first)) next();
    first = false;
    auto e = node(ExprKind::filter, cur().pos);
    e->name = dotted_name();
    e->args.push_back(std::move(operand));
    if (is_op("(")) parse_call_args(*e);
    operand = seal(std::move(e));
  }
  return operand;
}

ExprPtr Parser::parse_test(ExprPtr operand) {
  auto e = node(ExprKind::test, next().pos);
  e->negated = skip_name("not");
  e->name = dotted_name();
  e->args.push_back(std::move(operand));
  const Token& t = cur();
  if (is_op("(")) {
    parse_call_args(*e);
  } else if ((t.type == Tok::name || t.type == Tok::string || t.type == Tok::integer ||
              t.type == Tok::floating || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
    // A single argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
    Depth guard(*this);
    e->args.push_back(parse_postfix(parse_primary()));
  }
  return seal(std::move(e));
}

}  // namespace wick::io::jinja
