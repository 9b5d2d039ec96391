// Statements of the Jinja parser: template text, {{ }}, and the {% %} tags chat templates use.
#include "io/jinja_parser.h"

namespace wick::io::jinja {

Body Parser::subparse(std::initializer_list<const char*> end_names) {
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
Body Parser::parse_statements(std::initializer_list<const char*> end_names) {
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

StmtPtr Parser::parse_statement(std::initializer_list<const char*> enclosing_ends) {
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

void Parser::parse_if(Stmt& s) {
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
void Parser::parse_targets(Stmt& s) {
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

void Parser::parse_for(Stmt& s) {
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

void Parser::parse_set(Stmt& s) {
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

void Parser::parse_macro(Stmt& s) {
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

void Parser::parse_with(Stmt& s) {
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

bool Parser::reads_name(const Expr* e, const char* name) {
  if (!e) return false;
  if (e->kind == ExprKind::name && e->name == name) return true;
  for (const auto& a : e->args)
    if (reads_name(a.get(), name)) return true;
  for (const auto& kv : e->kwargs)
    if (reads_name(kv.second.get(), name)) return true;
  return false;
}

bool Parser::reads_name(const Body& body, const char* name) {
  for (const auto& s : body) {
    for (const auto& e : s->exprs)
      if (reads_name(e.get(), name)) return true;
    for (const auto& b : s->bodies)
      if (reads_name(b, name)) return true;
  }
  return false;
}

ParsedTemplate parse_template(std::string_view normalized_source) {
  ParsedTemplate t;
  t.body = Parser(lex_template(normalized_source)).parse();
  analyze_scopes(t);
  return t;
}

}  // namespace wick::io::jinja
