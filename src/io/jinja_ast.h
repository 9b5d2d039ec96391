#pragma once
// The parsed form of a Jinja template: expression and statement trees, one node per construct,
// with the source position each one came from (for error messages).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jinja_error.h"
#include "io/jinja_value.h"

namespace wick::io::jinja {

enum class ExprKind : uint8_t {
  constant,  // value
  name,      // name
  list,      // args = items
  tuple,     // args = items
  dict,      // args = key0, value0, key1, value1, ...
  getattr,   // args[0] . name
  getitem,   // args[0] [ args[1] ]
  slice,     // args = start, stop, step (each may be null)
  call,      // args[0] ( args[1..], kwargs )
  filter,    // args[0] | name ( args[1..], kwargs )
  test,      // args[0] is [not] name ( args[1..], kwargs )
  not_,      // not args[0]
  neg,       // -args[0]
  pos,       // +args[0]
  binop,     // args[0] op args[1]
  compare,   // args[0] cmp[0] args[1] cmp[1] args[2] ... (Python chained comparison)
  and_,      // args[0] and args[1]
  or_,       // args[0] or args[1]
  cond,      // args[1] if args[0] else args[2] (args[2] may be null)
  slot,      // the rendered body of a {% filter %} or {% set %} block
};

enum class BinOp : uint8_t { add, sub, mul, div, floordiv, mod, pow, concat };
enum class CmpOp : uint8_t { eq, ne, lt, le, gt, ge, in, not_in };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::constant;
  Pos pos;
  Value value;
  std::string name;
  BinOp op = BinOp::add;
  bool negated = false;
  bool folded_negative = false;  // a constant written as `-<number>` (see eval of **)
  uint16_t height = 1;  // longest path to a leaf; bounded so evaluation cannot overflow the stack
  std::vector<CmpOp> cmp;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind : uint8_t {
  text,          // text
  output,        // {{ exprs[0] }}
  if_,           // exprs = conditions; bodies = one per condition, plus else when present
  for_,          // targets in exprs[0] [if exprs[1]]; bodies = body, else
  set,           // targets = exprs[0]
  set_attr,      // targets[0].text = exprs[0]
  set_block,     // targets = rendered bodies[0] [| exprs[0]]
  macro,         // text(targets = params) with exprs = defaults (null = required)
  break_,
  continue_,
  with,          // targets = exprs (evaluated outside); bodies[0]
  filter_block,  // exprs[0] applied to rendered bodies[0]
  generation,    // transformers' {% generation %}: renders bodies[0] as is
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind = StmtKind::text;
  Pos pos;
  std::string text;
  std::vector<std::string> targets;
  bool unpack = false;  // targets written as a tuple (`for k, v in ...`)
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  bool catch_varargs = false;  // macro body reads `varargs`
  bool catch_kwargs = false;   // macro body reads `kwargs`
  /// Per entry of `bodies` that is a scope of its own (loop body and else, macro, with, block
  /// set, filter and generation bodies): the names that start out undefined in that scope.
  std::vector<std::vector<std::string>> undefined_at_start;
};

/// A parsed template and the names its top level starts with undefined.
struct ParsedTemplate {
  Body body;
  std::vector<std::string> undefined_at_start;
};

/// Parses normalised template source; throws TemplateError.
ParsedTemplate parse_template(std::string_view normalized_source);

/// Jinja compiles every scope to a Python function whose locals are fixed at compile time: a
/// name that a scope assigns unconditionally before it reads it is that scope's local from the
/// start, undefined until assigned, hiding the context's value of the same name (in nested
/// loops and macros too). This pass finds those names, scope by scope, the way jinja2's
/// idtracking does, and records them for the evaluator.
void analyze_scopes(ParsedTemplate& tmpl);

}  // namespace wick::io::jinja
