// Recursive-descent parser with Jinja2's grammar and operator precedence (jinja2/parser.py is
// the reference for what binds how: filters and tests bind tighter than arithmetic, `not`
// looser than comparisons, `x if c else y` loosest).
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "io/jinja_ast.h"
#include "io/jinja_lexer.h"

namespace wick::io::jinja {

namespace {

// Deep nesting would exhaust the stack (parsing, evaluating or freeing the tree); no real
// template comes near these.
constexpr int kMaxNesting = 100;
constexpr uint16_t kMaxExprHeight = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse() {
    Body body = subparse({});
    if (cur().type != Tok::eof) fail("unexpected " + describe(cur()));
    return body;
  }

 private:
  // ---- token stream ----
  const Token& cur() const { return toks_[i_]; }
  const Token& look() const { return toks_[i_ + 1 < toks_.size() ? i_ + 1 : i_]; }
  const Token& next() {
    const Token& t = toks_[i_];
    if (i_ + 1 < toks_.size()) ++i_;
    return t;
  }
  bool is_op(const char* op) const { return cur().type == Tok::op && cur().text == op; }
  bool is_name(const char* name) const { return cur().type == Tok::name && cur().text == name; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& msg) const { throw TemplateError(msg, cur().pos); }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
  }
  void expect_type(Tok type, const char* what) {
    if (cur().type != type) fail(std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }
  std::string expect_name() {
    if (cur().type != Tok::name) fail("expected a name, got " + describe(cur()));
    return next().text;
  }
  // A name that is assigned to: the constants' names are not variables.
  std::string expect_target() {
    static const char* constants[] = {"true", "false", "none", "True", "False", "None"};
    for (const char* c : constants)
      if (is_name(c)) fail(std::string("cannot assign to the constant '") + c + "'");
    return expect_name();
  }

  struct Depth {
    explicit Depth(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting) p_.fail("template nested too deeply");
    }
    ~Depth() { --p_.depth_; }
    Parser& p_;
  };

  // Records the height of a finished node and rejects trees too deep to walk recursively.
  ExprPtr seal(ExprPtr e) const {
    uint16_t h = 0;
    for (const auto& a : e->args)
      if (a) h = std::max(h, a->height);
    for (const auto& kv : e->kwargs) h = std::max(h, kv.second->height);
    if (h >= kMaxExprHeight) throw TemplateError("expression nested too deeply", e->pos);
    e->height = static_cast<uint16_t>(h + 1);
    return e;
  }

  static ExprPtr node(ExprKind kind, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // ---- statements ----
  Body subparse(std::initializer_list<const char*> end_names) {
    Depth guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Tok::eof) return body;
      if (t.type == Tok::data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::text;
        s->pos = t.pos;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::var_begin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::output;
        s->pos = t.pos;
        next();
        s->exprs.push_back(parse_tuple(true, false, {}));
        expect_type(Tok::var_end, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::block_begin) {
        next();
        for (const char* end : end_names)
          if (is_name(end)) return body;
        body.push_back(parse_statement(end_names));
        expect_type(Tok::block_end, "'%}'");
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  // Parses a statement's body up to one of `end_names` (left as the current token).
  Body parse_statements(std::initializer_list<const char*> end_names) {
    skip_op(":");
    expect_type(Tok::block_end, "'%}'");
    Body body = subparse(end_names);
    if (cur().type == Tok::eof) {
      std::string want;
      for (const char* e : end_names) want += std::string(want.empty() ? "" : " or ") + "'" + e + "'";
      fail("unexpected end of template (expected " + want + ")");
    }
    return body;
  }

  StmtPtr parse_statement(std::initializer_list<const char*> enclosing_ends) {
    if (cur().type != Tok::name) fail("expected a tag name, got " + describe(cur()));
    const std::string tag = cur().text;
    Pos pos = cur().pos;
    auto s = std::make_unique<Stmt>();
    s->pos = pos;
    if (tag == "if") {
      next();
      parse_if(*s);
    } else if (tag == "for") {
      next();
      parse_for(*s);
    } else if (tag == "set") {
      next();
      parse_set(*s);
    } else if (tag == "macro") {
      next();
      parse_macro(*s);
    } else if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
      s->kind = tag == "break" ? StmtKind::break_ : StmtKind::continue_;
    } else if (tag == "print") {
      next();
      s->kind = StmtKind::output;
      s->exprs.push_back(parse_tuple(true, false, {}));
    } else if (tag == "with") {
      next();
      parse_with(*s);
    } else if (tag == "filter") {
      next();
      s->kind = StmtKind::filter_block;
      s->exprs.push_back(parse_filter(node(ExprKind::slot, pos), true));
      s->bodies.push_back(parse_statements({"endfilter"}));
      next();
    } else if (tag == "generation") {
      next();
      s->kind = StmtKind::generation;
      s->bodies.push_back(parse_statements({"endgeneration"}));
      next();
    } else if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else") {
      std::string want;
      for (const char* e : enclosing_ends)
        want += std::string(want.empty() ? "" : ", ") + "'" + e + "'";
      fail("unexpected '" + tag + "'" + (want.empty() ? "" : " (expected " + want + ")"));
    } else {
      static const char* unsupported[] = {"call",   "include", "import", "from",
                                          "extends", "block",  "autoescape", "do"};
      for (const char* u : unsupported)
        if (tag == u) fail("the '" + tag + "' tag is not supported in chat templates");
      fail("unknown tag '" + tag + "'");
    }
    return s;
  }

  void parse_if(Stmt& s) {
    s.kind = StmtKind::if_;
    while (true) {
      s.exprs.push_back(parse_tuple(false, false, {}));
      s.bodies.push_back(parse_statements({"elif", "else", "endif"}));
      std::string which = next().text;
      if (which == "elif") continue;
      if (which == "else") {
        s.bodies.push_back(parse_statements({"endif"}));
        next();
      }
      return;
    }
  }

  // Assignment targets: a name, or names separated by commas (optionally parenthesised).
  void parse_targets(Stmt& s) {
    bool parens = skip_op("(");
    while (true) {
      s.targets.push_back(expect_target());
      if (!skip_op(",")) break;
      s.unpack = true;
      if (parens && is_op(")")) break;
      if (!parens && (is_name("in") || is_op("="))) break;
    }
    if (parens) {
      expect_op(")");
      s.unpack = true;
    }
  }

  void parse_for(Stmt& s) {
    s.kind = StmtKind::for_;
    parse_targets(s);
    if (!skip_name("in")) fail("expected 'in', got " + describe(cur()));
    s.exprs.push_back(parse_tuple(false, false, {"recursive"}));
    if (skip_name("if")) s.exprs.push_back(parse_expression(true));
    if (is_name("recursive")) fail("recursive loops are not supported");
    ++loop_depth_;
    s.bodies.push_back(parse_statements({"endfor", "else"}));
    --loop_depth_;
    if (next().text == "else") {
      // break/continue in the else branch belong to an enclosing loop, if any.
      s.bodies.push_back(parse_statements({"endfor"}));
      next();
    } else {
      s.bodies.emplace_back();
    }
  }

  void parse_set(Stmt& s) {
    if (cur().type == Tok::name && look().type == Tok::op && look().text == ".") {
      s.kind = StmtKind::set_attr;
      s.targets.push_back(next().text);
      next();
      s.text = expect_name();
      expect_op("=");
      s.exprs.push_back(parse_tuple(true, false, {}));
      return;
    }
    parse_targets(s);
    if (skip_op("=")) {
      s.kind = StmtKind::set;
      s.exprs.push_back(parse_tuple(true, false, {}));
      return;
    }
    s.kind = StmtKind::set_block;
    s.exprs.push_back(is_op("|") ? parse_filter(node(ExprKind::slot, s.pos), false) : nullptr);
    s.bodies.push_back(parse_statements({"endset"}));
    next();
  }

  void parse_macro(Stmt& s) {
    s.kind = StmtKind::macro;
    s.text = expect_target();
    expect_op("(");
    while (!is_op(")")) {
      if (!s.targets.empty()) expect_op(",");
      if (is_op(")")) break;
      s.targets.push_back(expect_target());
      if (skip_op("=")) {
        s.exprs.push_back(parse_expression(true));
      } else {
        if (!s.exprs.empty() && s.exprs.back()) fail("non-default argument follows default argument");
        s.exprs.push_back(nullptr);
      }
    }
    expect_op(")");
    int saved = loop_depth_;
    loop_depth_ = 0;
    s.bodies.push_back(parse_statements({"endmacro"}));
    loop_depth_ = saved;
    next();
    s.catch_varargs = reads_name(s.bodies[0], "varargs");
    s.catch_kwargs = reads_name(s.bodies[0], "kwargs");
  }

  void parse_with(Stmt& s) {
    s.kind = StmtKind::with;
    while (cur().type != Tok::block_end) {
      if (!s.targets.empty()) expect_op(",");
      s.targets.push_back(expect_target());
      expect_op("=");
      s.exprs.push_back(parse_expression(true));
    }
    s.bodies.push_back(parse_statements({"endwith"}));
    next();
  }

  static bool reads_name(const Expr* e, const char* name) {
    if (!e) return false;
    if (e->kind == ExprKind::name && e->name == name) return true;
    for (const auto& a : e->args)
      if (reads_name(a.get(), name)) return true;
    for (const auto& kv : e->kwargs)
      if (reads_name(kv.second.get(), name)) return true;
    return false;
  }
  static bool reads_name(const Body& body, const char* name) {
    for (const auto& s : body) {
      for (const auto& e : s->exprs)
        if (reads_name(e.get(), name)) return true;
      for (const auto& b : s->bodies)
        if (reads_name(b, name)) return true;
    }
    return false;
  }

  // ---- expressions ----
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const {
    if (cur().type == Tok::var_end || cur().type == Tok::block_end || is_op(")")) return true;
    for (const char* e : extra_end)
      if (is_name(e)) return true;
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens,
                      std::initializer_list<const char*> extra_end) {
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

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
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

  ExprPtr binary(ExprKind kind, Pos pos, ExprPtr a, ExprPtr b) {
    auto e = node(kind, pos);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return seal(std::move(e));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      Pos pos = next().pos;
      left = binary(ExprKind::or_, pos, std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      Pos pos = next().pos;
      left = binary(ExprKind::and_, pos, std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Depth guard(*this);
      auto e = node(ExprKind::not_, next().pos);
      e->args.push_back(parse_not());
      return seal(std::move(e));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
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

  ExprPtr binop(BinOp op, Pos pos, ExprPtr a, ExprPtr b) {
    auto e = binary(ExprKind::binop, pos, std::move(a), std::move(b));
    e->op = op;
    return e;
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinOp op = cur().text == "+" ? BinOp::add : BinOp::sub;
      Pos pos = next().pos;
      left = binop(op, pos, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (is_op("~")) {
      Pos pos = next().pos;
      left = binop(BinOp::concat, pos, std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string& t = cur().text;
      BinOp op = t == "*" ? BinOp::mul : t == "/" ? BinOp::div : t == "//" ? BinOp::floordiv : BinOp::mod;
      Pos pos = next().pos;
      left = binop(op, pos, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      Pos pos = next().pos;
      left = binop(BinOp::pow, pos, std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr parse_primary() {
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

  ExprPtr parse_list() {
    auto e = node(ExprKind::list, next().pos);
    while (!is_op("]")) {
      if (!e->args.empty()) expect_op(",");
      if (is_op("]")) break;
      e->args.push_back(parse_expression(true));
    }
    expect_op("]");
    return seal(std::move(e));
  }

  ExprPtr parse_dict() {
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

  ExprPtr parse_postfix(ExprPtr e) {
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

  ExprPtr parse_filter_expr(ExprPtr e) {
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

  ExprPtr parse_subscript(ExprPtr obj) {
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

  ExprPtr parse_subscribed() {
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

  void parse_call_args(Expr& e) {
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

  ExprPtr parse_call(ExprPtr callee) {
    // Errors raised by the call (raise_exception) point at the start of the callee.
    auto e = node(ExprKind::call, callee->pos);
    e->args.push_back(std::move(callee));
    parse_call_args(*e);
    return seal(std::move(e));
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name.append(".").append(expect_name());
    return name;
  }

  // `| name(args) | name ...`; with `inline_first` the first filter has no leading pipe.
  ExprPtr parse_filter(ExprPtr operand, bool inline_first) {
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

  ExprPtr parse_test(ExprPtr operand) {
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

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

ParsedTemplate parse_template(std::string_view normalized_source) {
  ParsedTemplate t;
  t.body = Parser(lex_template(normalized_source)).parse();
  analyze_scopes(t);
  return t;
}

}  // namespace wick::io::jinja
