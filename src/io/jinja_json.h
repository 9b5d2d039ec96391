#pragma once
// JSON in and out of the Jinja engine: template variables arrive as JSON, and the `tojson`
// filter must write exactly what Python's json.dumps writes with transformers' options.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "io/jinja_value.h"

namespace wick::io::jinja {

/// Converts JSON to a template value (objects keep their key order; nesting deeper than
/// kMaxValueDepth and integers beyond int64 are errors).
Value value_from_json(const nlohmann::ordered_json& j);
Value value_from_json(const nlohmann::json& j);

/// json.dumps options, as transformers' `tojson(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)` passes them.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // the indent unit; absent = single line
  std::optional<std::string> item_sep;  // default ", " (or "," when indenting)
  std::optional<std::string> key_sep;   // default ": "
  bool sort_keys = false;
};

/// Appends json.dumps(v, **options). Undefined, namespaces and callables are TypeErrors.
void dump_json(std::string& out, const Value& v, const JsonDumpOptions& opt, Budget& budget);

}  // namespace wick::io::jinja
