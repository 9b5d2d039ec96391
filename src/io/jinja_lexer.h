#pragma once
// Splits a Jinja template into text and tag tokens the way Jinja2's lexer does with the settings
// transformers uses: trim_blocks and lstrip_blocks on, `-`/`+` whitespace control, raw blocks,
// newlines normalised to "\n" and one trailing newline dropped.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/jinja_error.h"

namespace wick::io::jinja {

enum class Tok : uint8_t {
  data,         // template text (already whitespace-controlled)
  var_begin,    // {{
  var_end,      // }}
  block_begin,  // {%
  block_end,    // %}
  name,
  string,   // text = decoded value
  integer,  // ival
  floating, // fval
  op,       // text = the operator
  eof
};

struct Token {
  Tok type = Tok::eof;
  Pos pos;
  std::string text;
  int64_t ival = 0;
  double fval = 0;
};

/// Normalises newlines ("\r\n" and "\r" become "\n") and drops one trailing newline, as Jinja
/// does before lexing (keep_trailing_newline=False).
std::string normalize_template_source(std::string_view source);

/// Tokenizes normalised source. Throws TemplateError with the position of the problem.
std::vector<Token> lex_template(std::string_view source);

/// A token's description for messages: "'endfor'", "end of template", "'}}'".
std::string describe(const Token& t);

}  // namespace wick::io::jinja
