#pragma once
// The recursive-descent parser of the Jinja engine, with Jinja2's grammar and operator precedence
// (jinja2/parser.py is the reference for what binds how: filters and tests bind tighter than
// arithmetic, `not` looser than comparisons, `x if c else y` loosest). Statements are parsed in
// jinja_parse_stmt.cpp, expressions in jinja_parse_expr.cpp.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "io/jinja_ast.h"
#include "io/jinja_lexer.h"

namespace wick::io::jinja {

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
  Body subparse(std::initializer_list<const char*> end_names);
  // Parses a statement's body up to one of `end_names` (left as the current token).
  Body parse_statements(std::initializer_list<const char*> end_names);
  StmtPtr parse_statement(std::initializer_list<const char*> enclosing_ends);
  void parse_if(Stmt& s);
  // Assignment targets: a name, or names separated by commas (optionally parenthesised).
  void parse_targets(Stmt& s);
  void parse_for(Stmt& s);
  void parse_set(Stmt& s);
  void parse_macro(Stmt& s);
  void parse_with(Stmt& s);
  static bool reads_name(const Expr* e, const char* name);
  static bool reads_name(const Body& body, const char* name);

  // ---- expressions ----
  bool is_tuple_end(std::initializer_list<const char*> extra_end) const;
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, std::initializer_list<const char*> extra_end);
  ExprPtr parse_expression(bool with_condexpr);
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprKind kind, Pos pos, ExprPtr a, ExprPtr b);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr binop(BinOp op, Pos pos, ExprPtr a, ExprPtr b);
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj);
  ExprPtr parse_subscribed();
  void parse_call_args(Expr& e);
  ExprPtr parse_call(ExprPtr callee);
  std::string dotted_name();
  // `| name(args) | name ...`; with `inline_first` the first filter has no leading pipe.
  ExprPtr parse_filter(ExprPtr operand, bool inline_first);
  ExprPtr parse_test(ExprPtr operand);

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace wick::io::jinja
