// Jinja's builtin filters that chat templates use, with Jinja 3.1's semantics, and transformers'
// `tojson` (json.dumps without HTML escaping, with indent/separators/sort_keys).
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "io/jinja_eval.h"
#include "io/jinja_json.h"
#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

using FilterFn = Value (*)(Interp&, const Value&, Args&);

[[noreturn]] void fail(const std::string& msg) { throw TemplateError(msg); }

std::string str(Interp& in, const Value& v) { return to_str(v, in.budget()); }

Value string_result(Interp& in, std::string s) {
  in.budget().produce(s.size());
  return Value::string(std::move(s));
}

// Jinja's attribute getter for map/selectattr/sort/...: "a.b.0" looks up item by item, and a
// default replaces an Undefined after every step.
Value get_attribute(Interp& in, const Value& item, const Value& attribute,
                    const Value& dflt = Value()) {
  auto step = [&](const Value& obj, const Value& key) {
    Value r = in.getitem(obj, key);
    return r.is_undefined() && !unset(dflt) && !dflt.is_none() ? dflt : r;
  };
  if (!attribute.is_string()) return step(item, attribute);
  Value cur = item;
  const std::string& path = attribute.as_string();
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18)
      cur = step(cur, Value::integer(std::stoll(part)));
    else
      cur = step(cur, Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

// Sort key for sort/min/max/unique: strings lowercased unless case-sensitive.
Value fold_case(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is_string()) return v;
  return Value::string(py_lower(v.as_string()));
}

bool bool_arg(const Value& v, bool dflt) { return unset(v) ? dflt : truthy(v); }

// Jinja's map, select*, reject*, unique and items are generator functions: the result is a
// generator (true even when empty, no len()), nothing runs until it is consumed, and map and
// select do nothing at all for a false input. wick does the work at once and keeps an error in
// the generator, to be raised only if something consumes it, as Jinja would.
template <class F>
Value generator(const Value& input, bool skip_if_false, F&& produce) {
  std::vector<Value> items;
  if (skip_if_false && !truthy(input)) return Value::lazy({}, Lazy::generator);
  try {
    produce(items);
  } catch (const LimitError&) {
    throw;
  } catch (const TemplateError& e) {
    return Value::lazy(std::move(items), Lazy::generator, e.what());
  }
  return Value::lazy(std::move(items), Lazy::generator);
}

// ---- filters ----

Value f_abs(Interp&, const Value& v, Args& a) {
  bind_args("abs", a, {});
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return Value::floating(std::fabs(v.as_float()));
  if (!v.is_integral()) fail("bad operand type for abs(): '" + type_name(v) + "'");
  if (v.as_int() == INT64_MIN) fail("integer overflow (wick's template integers are 64-bit)");
  return Value::integer(std::llabs(v.as_int()));
}

Value f_attr(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("attr", a, {"name"}, 1);
  std::string name = str(in, p[0]);
  // attr() reads Python attributes only: a dict's keys are not attributes.
  if (v.is_ns()) return in.getattr(v, name);
  if (v.is_undefined()) fail_undefined(v);
  if (auto m = find_method(v, name)) return *m;
  std::string msg = "'";
  msg += type_name(v) + " object' has no attribute '" + name + "'";
  return Value::undefined(std::move(msg));
}

Value f_capitalize(Interp& in, const Value& v, Args& a) {
  bind_args("capitalize", a, {});
  return string_result(in, py_capitalize(str(in, v)));
}

Value f_default(Interp&, const Value& v, Args& a) {
  auto p = bind_args("default", a, {"default_value", "boolean"});
  Value dflt = unset(p[0]) ? Value::string("") : p[0];
  if (v.is_undefined() || (bool_arg(p[1], false) && !truthy(v))) return dflt;
  return v;
}

Value f_dictsort(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("dictsort", a, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) fail("dictsort: argument must be a dict, not " + type_name(v));
  bool cs = bool_arg(p[0], false), rev = bool_arg(p[2], false);
  std::string by = unset(p[1]) ? "key" : str(in, p[1]);
  if (by != "key" && by != "value") fail("dictsort: 'by' must be 'key' or 'value'");
  std::vector<Value> pairs;
  for (const auto& [k, item] : v.as_dict().entries)
    pairs.push_back(Value::list({Value::string(k), item}, true));
  size_t pos = by == "key" ? 0 : 1;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    int c = compare(fold_case(x.items()[pos], cs), fold_case(y.items()[pos], cs), in.budget(), "<");
    return rev ? c == 1 : c == -1;
  });
  return Value::list(std::move(pairs));
}

Value f_escape(Interp& in, const Value& v, Args& a) {
  bind_args("escape", a, {});
  std::string out;
  for (char c : str(in, v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return string_result(in, std::move(out));
}

Value f_first(Interp& in, const Value& v, Args& a) {
  bind_args("first", a, {});
  // The first item of a generator that failed later is still there.
  if (v.is_list() && !v.items().empty()) return v.items().front();
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value f_last(Interp& in, const Value& v, Args& a) {
  bind_args("last", a, {});
  if (v.is_list() && v.as_list().lazy == Lazy::generator)
    fail("'generator' object is not reversible");
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value parse_number(Interp& in, const Value& v, bool integer, int base, bool& ok) {
  ok = true;
  // int()/float() of an Undefined raise (UndefinedError is not the TypeError Jinja catches).
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_integral()) return integer ? Value::integer(v.as_int()) : Value::floating(v.as_float());
  if (v.is_float()) {
    double d = v.as_float();
    if (!integer) return v;
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.as_string(), std::nullopt, true, true);
    std::string digits;
    for (char c : s)
      if (c != '_') digits.push_back(c);
    // Python's int()/float() take no hex floats or "0x" prefixes in base 10.
    bool hexish = digits.find_first_of("xXpP") != std::string::npos && base != 16;
    if (!digits.empty() && !hexish) {
      char* end = nullptr;
      errno = 0;
      if (integer) {
        long long r = std::strtoll(digits.c_str(), &end, base);
        if (*end == 0 && errno == 0) return Value::integer(r);
      }
      double d = std::strtod(digits.c_str(), &end);
      if (*end == 0) {
        if (!integer) return Value::floating(d);
        if (std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
      }
    }
  }
  (void)in;
  ok = false;
  return Value();
}

Value f_int(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("int", a, {"default", "base"});
  int base = unset(p[1]) ? 10 : static_cast<int>(p[1].is_integral() ? p[1].as_int() : 10);
  if (base < 2 || base > 36) base = 10;
  bool ok;
  Value r = parse_number(in, v, true, base, ok);
  return ok ? r : (unset(p[0]) ? Value::integer(0) : p[0]);
}

Value f_float(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("float", a, {"default"});
  bool ok;
  Value r = parse_number(in, v, false, 10, ok);
  return ok ? r : (unset(p[0]) ? Value::floating(0.0) : p[0]);
}

Value f_indent(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("indent", a, {"width", "first", "blank"});
  // Jinja appends "\n" to the value itself, which only a string survives.
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) fail("unsupported operand type(s) for +=: '" + type_name(v) + "' and 'str'");
  std::string unit = unset(p[0])         ? "    "
                     : p[0].is_string()   ? p[0].as_string()
                     : p[0].is_integral() ? std::string(static_cast<size_t>(std::clamp<int64_t>(
                                                            p[0].as_int(), 0, 1 << 16)),
                                                        ' ')
                                          : "    ";
  bool first = bool_arg(p[1], false), blank = bool_arg(p[2], false);
  // Jinja appends a newline before splitting, so a trailing newline survives.
  auto lines = py_splitlines(str(in, v) + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += "\n";
    if (i && (blank || !lines[i].empty())) out += unit;
    out += lines[i];
    if (out.size() > in.budget().max_bytes) in.budget().fail_bytes();
  }
  if (first) out = unit + out;
  return string_result(in, std::move(out));
}

Value f_items(Interp&, const Value& v, Args& a) {
  bind_args("items", a, {});
  return generator(v, false, [&](std::vector<Value>& out) {
    if (v.is_undefined()) return;
    if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
    for (const auto& [k, item] : v.as_dict().entries)
      out.push_back(Value::list({Value::string(k), item}, true));
  });
}

Value f_join(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("join", a, {"d", "attribute"});
  std::string sep = unset(p[0]) ? "" : str(in, p[0]);
  std::string out;
  bool firstp = true;
  for (const auto& item : in.iterate(v)) {
    if (!firstp) out += sep;
    firstp = false;
    append_str(out, unset(p[1]) ? item : get_attribute(in, item, p[1]), in.budget());
    if (out.size() > in.budget().max_bytes) in.budget().fail_bytes();
  }
  return string_result(in, std::move(out));
}

Value f_length(Interp&, const Value& v, Args& a) {
  bind_args("length", a, {});
  switch (v.kind()) {
    case Value::Kind::undefined: return Value::integer(0);
    case Value::Kind::string: return Value::integer(static_cast<int64_t>(utf8_length(v.as_string())));
    case Value::Kind::list:
      if (v.as_list().lazy == Lazy::generator) fail("object of type 'generator' has no len()");
      return Value::integer(static_cast<int64_t>(v.items().size()));
    case Value::Kind::dict: return Value::integer(static_cast<int64_t>(v.as_dict().size()));
    default: fail("object of type '" + type_name(v) + "' has no len()");
  }
}

Value f_list(Interp& in, const Value& v, Args& a) {
  bind_args("list", a, {});
  return Value::list(in.iterate(v));
}

Value f_lower(Interp& in, const Value& v, Args& a) {
  bind_args("lower", a, {});
  return string_result(in, py_lower(str(in, v)));
}

Value f_upper(Interp& in, const Value& v, Args& a) {
  bind_args("upper", a, {});
  return string_result(in, py_upper(str(in, v)));
}

Value f_map(Interp& in, const Value& v, Args& a) {
  return generator(v, true, [&](std::vector<Value>& out) {
  bool by_attribute = a.pos.empty() && std::any_of(a.kw.begin(), a.kw.end(), [](const auto& kv) {
    return kv.first == "attribute";
  });
  if (by_attribute) {
    auto p = bind_args("map", a, {"attribute", "default"});
    for (const auto& item : in.iterate(v)) out.push_back(get_attribute(in, item, p[0], p[1]));
    return;
  }
  if (a.pos.empty()) fail("map requires a filter argument");
  std::string name = str(in, a.pos[0]);
  Args rest;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (const auto& item : in.iterate(v)) {
    Args copy = rest;
    out.push_back(in.filter(name, item, copy));
  }
  });
}

Value min_max(Interp& in, const Value& v, Args& a, bool want_max) {
  auto p = bind_args(want_max ? "max" : "min", a, {"case_sensitive", "attribute"});
  bool cs = bool_arg(p[0], false);
  auto items = in.iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = [&](const Value& x) {
    return fold_case(unset(p[1]) ? x : get_attribute(in, x, p[1]), cs);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    int c = compare(k, best_key, in.budget(), want_max ? ">" : "<");
    if (want_max ? c == 1 : c == -1) best = i, best_key = k;
  }
  return items[best];
}

Value f_max(Interp& in, const Value& v, Args& a) { return min_max(in, v, a, true); }
Value f_min(Interp& in, const Value& v, Args& a) { return min_max(in, v, a, false); }

// select / reject / selectattr / rejectattr share one loop.
Value select_items(Interp& in, const Value& v, Args& a, bool by_attr, bool keep_when) {
  return generator(v, true, [&](std::vector<Value>& out) {
  Value attr;
  size_t next = 0;
  if (by_attr) {
    if (a.pos.empty()) fail("selectattr/rejectattr need an attribute name");
    attr = a.pos[0];
    next = 1;
  }
  std::optional<std::string> test_name;
  if (a.pos.size() > next) test_name = str(in, a.pos[next++]);
  Args test_args;
  test_args.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(next), a.pos.end());
  test_args.kw = a.kw;
  for (const auto& item : in.iterate(v)) {
    Value x = by_attr ? get_attribute(in, item, attr) : item;
    bool r;
    if (test_name) {
      Args copy = test_args;
      r = in.test(*test_name, x, copy);
    } else {
      r = truthy(x);
    }
    if (r == keep_when) out.push_back(item);
  }
  });
}

Value f_select(Interp& in, const Value& v, Args& a) { return select_items(in, v, a, false, true); }
Value f_reject(Interp& in, const Value& v, Args& a) { return select_items(in, v, a, false, false); }
Value f_selectattr(Interp& in, const Value& v, Args& a) { return select_items(in, v, a, true, true); }
Value f_rejectattr(Interp& in, const Value& v, Args& a) {
  return select_items(in, v, a, true, false);
}

Value f_replace(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("replace", a, {"old", "new", "count"}, 2);
  int64_t count = unset(p[2]) || p[2].is_none() ? -1 : (p[2].is_integral() ? p[2].as_int() : -1);
  std::string r = py_replace(str(in, v), str(in, p[0]), str(in, p[1]), count, in.budget().max_bytes);
  return string_result(in, std::move(r));
}

Value f_reverse(Interp& in, const Value& v, Args& a) {
  bind_args("reverse", a, {});
  if (v.is_string()) {
    auto cps = code_points(v.as_string());
    std::string out;
    for (size_t i = cps.size(); i-- > 0;) out.append(v.as_string(), cps[i].offset, cps[i].size);
    return string_result(in, std::move(out));
  }
  // reversed() gives an iterator; a generator cannot be reversed, so Jinja makes it a list.
  bool to_list = v.is_list() && v.as_list().lazy == Lazy::generator;
  auto items = in.iterate(v);
  std::reverse(items.begin(), items.end());
  return to_list ? Value::list(std::move(items)) : Value::lazy(std::move(items), Lazy::generator);
}

Value f_round(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("round", a, {"precision", "method"});
  int64_t precision = unset(p[0]) ? 0 : (p[0].is_integral() ? p[0].as_int() : 0);
  std::string method = unset(p[1]) ? "common" : str(in, p[1]);
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) fail("round: expected a number, got " + type_name(v));
  double x = v.as_float();
  precision = std::clamp<int64_t>(precision, -300, 300);
  double scale = std::pow(10.0, static_cast<double>(precision));
  if (method == "common") {
    // Python's round(): an int stays an int; floats round half to even.
    if (v.is_integral() && precision >= 0) return Value::integer(v.as_int());
    double y = x * scale, r = std::nearbyint(y);
    return Value::floating(precision == 0 ? r : r / scale);
  }
  if (method == "ceil") return Value::floating(std::ceil(x * scale) / scale);
  if (method == "floor") return Value::floating(std::floor(x * scale) / scale);
  fail("round: method must be 'common', 'ceil' or 'floor'");
}

Value f_safe(Interp& in, const Value& v, Args& a) {
  bind_args("safe", a, {});
  return Value::string(str(in, v));
}

Value f_sort(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("sort", a, {"reverse", "case_sensitive", "attribute"});
  bool rev = bool_arg(p[0], false), cs = bool_arg(p[1], false);
  auto items = in.iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i)
    keyed.emplace_back(fold_case(unset(p[2]) ? items[i] : get_attribute(in, items[i], p[2]), cs), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    int c = compare(x.first, y.first, in.budget(), "<");
    return rev ? c == 1 : c == -1;
  });
  std::vector<Value> out;
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  return Value::list(std::move(out));
}

Value f_string(Interp& in, const Value& v, Args& a) {
  bind_args("string", a, {});
  return Value::string(str(in, v));
}

Value f_sum(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("sum", a, {"attribute", "start"});
  Value total = unset(p[1]) ? Value::integer(0) : p[1];
  for (const auto& item : in.iterate(v)) {
    Value x = unset(p[0]) ? item : get_attribute(in, item, p[0]);
    if (x.is_undefined()) fail_undefined(x);
    if (!x.is_number() || !total.is_number())
      fail("unsupported operand type(s) for +: '" + type_name(total) + "' and '" + type_name(x) + "'");
    if (total.is_integral() && x.is_integral()) {
      int64_t r;
      if (__builtin_add_overflow(total.as_int(), x.as_int(), &r))
        fail("integer overflow (wick's template integers are 64-bit)");
      total = Value::integer(r);
    } else {
      total = Value::floating(total.as_float() + x.as_float());
    }
  }
  return total;
}

Value f_title(Interp& in, const Value& v, Args& a) {
  bind_args("title", a, {});
  return string_result(in, jinja_title(str(in, v)));
}

Value f_tojson(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("tojson", a, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions opt;
  opt.ensure_ascii = bool_arg(p[0], false);
  if (!unset(p[1]) && !p[1].is_none()) {
    if (p[1].is_string())
      opt.indent = p[1].as_string();
    else if (p[1].is_integral())
      opt.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(p[1].as_int(), 0, 1 << 16)), ' ');
    else
      fail("tojson: indent must be an integer or a string");
  }
  if (!unset(p[2]) && !p[2].is_none()) {
    if (!p[2].is_list() || p[2].items().size() != 2 || !p[2].items()[0].is_string() ||
        !p[2].items()[1].is_string())
      fail("tojson: separators must be a pair of strings");
    opt.item_sep = p[2].items()[0].as_string();
    opt.key_sep = p[2].items()[1].as_string();
  }
  opt.sort_keys = bool_arg(p[3], false);
  std::string out;
  dump_json(out, v, opt, in.budget());
  return string_result(in, std::move(out));
}

Value f_trim(Interp& in, const Value& v, Args& a) {
  auto p = bind_args("trim", a, {"chars"});
  std::optional<std::string> chars;
  if (!unset(p[0]) && !p[0].is_none()) chars = str(in, p[0]);
  return Value::string(py_strip(str(in, v), chars, true, true));
}

Value f_unique(Interp& in, const Value& v, Args& a) {
  return generator(v, false, [&](std::vector<Value>& out) {
  auto p = bind_args("unique", a, {"case_sensitive", "attribute"});
  bool cs = bool_arg(p[0], false);
  std::vector<Value> seen;
  for (const auto& item : in.iterate(v)) {
    Value k = fold_case(unset(p[1]) ? item : get_attribute(in, item, p[1]), cs);
    bool dup = false;
    for (const auto& s : seen)
      if (equals(s, k, in.budget())) {
        dup = true;
        break;
      }
    if (dup) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  });
}

Value f_wordcount(Interp& in, const Value& v, Args& a) {
  bind_args("wordcount", a, {});
  std::string s = str(in, v);
  int64_t n = 0;
  bool in_word = false;
  for (const auto& c : code_points(s)) {
    std::string ch = s.substr(c.offset, c.size);
    bool word = c.value == '_' || (c.value >= '0' && c.value <= '9') || py_is(ch, "isalpha");
    if (word && !in_word) ++n;
    in_word = word;
  }
  return Value::integer(n);
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"abs", f_abs},           {"attr", f_attr},         {"capitalize", f_capitalize},
      {"count", f_length},      {"d", f_default},         {"default", f_default},
      {"dictsort", f_dictsort}, {"e", f_escape},          {"escape", f_escape},
      {"first", f_first},       {"float", f_float},       {"indent", f_indent},
      {"int", f_int},           {"items", f_items},       {"join", f_join},
      {"last", f_last},         {"length", f_length},     {"list", f_list},
      {"lower", f_lower},       {"map", f_map},           {"max", f_max},
      {"min", f_min},           {"reject", f_reject},     {"rejectattr", f_rejectattr},
      {"replace", f_replace},   {"reverse", f_reverse},   {"round", f_round},
      {"safe", f_safe},         {"select", f_select},     {"selectattr", f_selectattr},
      {"sort", f_sort},         {"string", f_string},     {"sum", f_sum},
      {"title", f_title},       {"tojson", f_tojson},     {"trim", f_trim},
      {"unique", f_unique},     {"upper", f_upper},       {"wordcount", f_wordcount},
  };
  return table;
}

}  // namespace

Value Interp::filter(const std::string& name, const Value& operand, Args& args) {
  budget_.tick();
  auto it = filters().find(name);
  if (it == filters().end()) throw TemplateError("no filter named '" + name + "'");
  return it->second(*this, operand, args);
}


bool is_filter_name(const std::string& name) { return filters().count(name) != 0; }

}  // namespace wick::io::jinja
