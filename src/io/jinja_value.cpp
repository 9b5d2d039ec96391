#include "io/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "io/jinja_text.h"

namespace wick::io::jinja {

void Budget::fail_steps() const {
  throw LimitError("rendering exceeded " + std::to_string(max_steps) +
                      " steps (a runaway loop or a hostile template?)");
}

void Budget::fail_bytes() const {
  throw LimitError("rendering produced a string larger than " + std::to_string(max_bytes) +
                      " bytes");
}

Value Value::undefined(std::string hint) {
  Value v;
  v.v_ = UndefinedTag{std::make_shared<const std::string>(std::move(hint))};
  return v;
}
Value Value::none() {
  Value v;
  v.v_ = NoneTag{};
  return v;
}
Value Value::boolean(bool b) {
  Value v;
  v.v_ = b;
  return v;
}
Value Value::integer(int64_t i) {
  Value v;
  v.v_ = i;
  return v;
}
Value Value::floating(double d) {
  Value v;
  v.v_ = d;
  return v;
}
Value Value::string(std::string s) {
  Value v;
  v.v_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::from_list(ListData data) {
  uint32_t depth = 0;
  bool has_ns = false;
  for (const auto& it : data.items) {
    depth = std::max(depth, it.depth());
    has_ns = has_ns || it.contains_ns();
  }
  if (depth + 1 > kMaxValueDepth)
    throw TemplateError("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  data.depth = depth + 1;
  data.has_ns = has_ns;
  Value v;
  v.v_ = std::make_shared<const ListData>(std::move(data));
  return v;
}

Value Value::list(std::vector<Value> items, bool tuple) {
  ListData d;
  d.items = std::move(items);
  d.tuple = tuple;
  return from_list(std::move(d));
}

Value Value::lazy(std::vector<Value> items, Lazy kind, std::string deferred_error) {
  ListData d;
  d.items = std::move(items);
  d.lazy = kind;
  if (!deferred_error.empty())
    d.deferred_error = std::make_shared<const std::string>(std::move(deferred_error));
  return from_list(std::move(d));
}

Value Value::range(std::vector<Value> items, int64_t start, int64_t stop, int64_t step) {
  ListData d;
  d.items = std::move(items);
  d.lazy = Lazy::range;
  d.range_bounds[0] = start, d.range_bounds[1] = stop, d.range_bounds[2] = step;
  return from_list(std::move(d));
}

Value Value::dict(DictData d) {
  uint32_t depth = 0;
  bool has_ns = false;
  for (const auto& [k, it] : d.entries) {
    depth = std::max(depth, it.depth());
    has_ns = has_ns || it.contains_ns();
  }
  if (depth + 1 > kMaxValueDepth)
    throw TemplateError("value nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  d.depth = depth + 1;
  d.has_ns = has_ns;
  Value v;
  v.v_ = std::make_shared<const DictData>(std::move(d));
  return v;
}

Value Value::ns(std::shared_ptr<Namespace> n) {
  Value v;
  v.v_ = std::move(n);
  return v;
}

Value Value::function(std::shared_ptr<const Function> f) {
  Value v;
  v.v_ = std::move(f);
  return v;
}

double Value::as_float() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

const std::vector<Value>& Value::items() const { return as_list().items; }

std::string Value::undefined_message() const {
  const auto& hint = std::get<UndefinedTag>(v_).hint;
  return hint ? *hint : std::string("value is undefined");
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::ns: return std::get<8>(v_).get();
    case Kind::function: return std::get<9>(v_).get();
    case Kind::list: return std::get<6>(v_).get();
    case Kind::dict: return std::get<7>(v_).get();
    case Kind::string: return std::get<5>(v_).get();
    default: return nullptr;
  }
}

uint32_t Value::depth() const {
  if (is_list()) return as_list().depth;
  if (is_dict()) return as_dict().depth;
  return 0;
}

bool Value::contains_ns() const {
  if (is_ns()) return true;
  if (is_list()) return as_list().has_ns;
  if (is_dict()) return as_dict().has_ns;
  return false;
}

const Value* DictData::find(std::string_view key) const {
  if (!index_.empty()) {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries[it->second].second;
  }
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

void DictData::set(std::string key, Value v) {
  constexpr size_t kIndexFrom = 16;
  if (index_.empty()) {
    for (auto& [k, old] : entries)
      if (k == key) {
        old = std::move(v);
        return;
      }
  } else if (auto it = index_.find(key); it != index_.end()) {
    entries[it->second].second = std::move(v);
    return;
  }
  entries.emplace_back(std::move(key), std::move(v));
  if (!index_.empty()) {
    index_.emplace(entries.back().first, entries.size() - 1);
  } else if (entries.size() >= kIndexFrom) {
    for (size_t i = 0; i < entries.size(); ++i) index_.emplace(entries[i].first, i);
  }
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return false;
    case Value::Kind::boolean: return v.as_bool();
    case Value::Kind::integer: return v.as_int() != 0;
    case Value::Kind::floating: return v.as_float() != 0.0;
    case Value::Kind::string: return !v.as_string().empty();
    case Value::Kind::list:
      // A generator is an object, and objects are true.
      return v.as_list().lazy == Lazy::generator || !v.items().empty();
    case Value::Kind::dict: return v.as_dict().size() != 0;
    default: return true;
  }
}

// Static strings: returning references keeps `"'" + type_name(v)` on the const& overload of
// operator+ (the rvalue one trips a GCC 12 -Wrestrict false positive).
const std::string& type_name(const Value& v) {
  static const std::string names[] = {"Undefined", "NoneType",  "bool",        "int",
                                      "float",     "str",       "list",        "tuple",
                                      "dict",      "Namespace", "function",    "generator",
                                      "dict_items", "dict_keys", "dict_values", "range"};
  switch (v.kind()) {
    case Value::Kind::undefined: return names[0];
    case Value::Kind::none: return names[1];
    case Value::Kind::boolean: return names[2];
    case Value::Kind::integer: return names[3];
    case Value::Kind::floating: return names[4];
    case Value::Kind::string: return names[5];
    case Value::Kind::list:
      switch (v.as_list().lazy) {
        case Lazy::generator: return names[11];
        case Lazy::dict_items: return names[12];
        case Lazy::dict_keys: return names[13];
        case Lazy::dict_values: return names[14];
        case Lazy::range: return names[15];
        case Lazy::none: break;
      }
      return v.as_list().tuple ? names[7] : names[6];
    case Value::Kind::dict: return names[8];
    case Value::Kind::ns: return names[9];
    case Value::Kind::function: return names[10];
  }
  return names[0];
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  bool neg = sci[0] == '-';
  if (neg) sci.remove_prefix(1);
  size_t e_at = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_at))
    if (c != '.') digits.push_back(c);
  int exp10 = std::atoi(std::string(sci.substr(e_at + 1)).c_str());
  int decpt = exp10 + 1;  // digits[0] sits just before the decimal point at position decpt
  std::string out = neg ? "-" : "";
  int n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (n > 1) out.append(".").append(digits, 1, std::string::npos);
    int e = decpt - 1;
    out += e < 0 ? "e-" : "e+";
    std::string ed = std::to_string(std::abs(e));
    if (ed.size() < 2) ed = "0" + ed;
    out += ed;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (decpt >= n) {
    out += digits + std::string(static_cast<size_t>(decpt - n), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<size_t>(decpt)) + "." +
           digits.substr(static_cast<size_t>(decpt));
  }
  return out;
}

namespace {

void check_out(const std::string& out, Budget& budget) {
  if (out.size() > budget.max_bytes) budget.fail_bytes();
}

void append_value(std::string& out, const Value& v, Budget& budget, bool repr) {
  budget.tick();
  switch (v.kind()) {
    case Value::Kind::undefined:
      if (repr) out += "Undefined";
      return;
    case Value::Kind::none: out += "None"; return;
    case Value::Kind::boolean: out += v.as_bool() ? "True" : "False"; return;
    case Value::Kind::integer: out += std::to_string(v.as_int()); return;
    case Value::Kind::floating: out += format_float(v.as_float()); return;
    case Value::Kind::string:
      budget.tick(v.as_string().size() / 64);
      if (repr)
        py_repr_string(out, v.as_string());
      else
        out += v.as_string();
      check_out(out, budget);
      return;
    case Value::Kind::list: {
      const auto& l = v.as_list();
      if (l.lazy == Lazy::generator)
        throw TemplateError("cannot print a generator object (Jinja prints its memory address); "
                            "convert it with |list");
      if (l.lazy == Lazy::range) {
        const int64_t* r = l.range_bounds;
        out += "range(" + std::to_string(r[0]) + ", " + std::to_string(r[1]);
        if (r[2] != 1) out += ", " + std::to_string(r[2]);
        out += ")";
        return;
      }
      if (l.lazy != Lazy::none) out += type_name(v) + "(";
      out += l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        append_value(out, l.items[i], budget, true);
        check_out(out, budget);
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      out += l.tuple ? ")" : "]";
      if (l.lazy != Lazy::none) out += ")";
      return;
    }
    case Value::Kind::dict: {
      out += "{";
      bool first = true;
      for (const auto& [k, item] : v.as_dict().entries) {
        if (!first) out += ", ";
        first = false;
        py_repr_string(out, k);
        out += ": ";
        append_value(out, item, budget, true);
        check_out(out, budget);
      }
      out += "}";
      return;
    }
    case Value::Kind::ns: {
      out += "<Namespace {";
      bool first = true;
      for (const auto& [k, item] : v.as_ns().attrs.entries) {
        if (!first) out += ", ";
        first = false;
        py_repr_string(out, k);
        out += ": ";
        append_value(out, item, budget, true);
        check_out(out, budget);
      }
      out += "}>";
      return;
    }
    case Value::Kind::function: out += "<function " + v.as_function().name + ">"; return;
  }
}

// Exact comparison of an int with a double (Python compares the mathematical values).
int compare_int_float(int64_t i, double d) {
  if (std::isnan(d)) return 2;  // unordered
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double fl = std::floor(d);
  auto di = static_cast<int64_t>(fl);
  if (i < di) return -1;
  if (i > di) return 1;
  return fl < d ? -1 : 0;
}

int compare_numbers(const Value& a, const Value& b) {
  if (a.is_integral() && b.is_integral()) {
    int64_t x = a.as_int(), y = b.as_int();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_integral()) return compare_int_float(a.as_int(), b.as_float());
  if (b.is_integral()) {
    int c = compare_int_float(b.as_int(), a.as_float());
    return c == 2 ? 2 : -c;
  }
  double x = a.as_float(), y = b.as_float();
  if (std::isnan(x) || std::isnan(y)) return 2;
  return x < y ? -1 : x > y ? 1 : 0;
}

}  // namespace

void append_str(std::string& out, const Value& v, Budget& budget) {
  append_value(out, v, budget, false);
}

void append_repr(std::string& out, const Value& v, Budget& budget) {
  append_value(out, v, budget, true);
}

std::string to_str(const Value& v, Budget& budget) {
  if (v.is_string()) return v.as_string();
  std::string out;
  append_str(out, v, budget);
  return out;
}

bool equals(const Value& a, const Value& b, Budget& budget) {
  budget.tick();
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::undefined:
    case Value::Kind::none: return true;
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::list: {
      const auto &x = a.as_list(), &y = b.as_list();
      // Generators and dict views compare by identity here (Python's set-like view
      // comparisons are not modelled); ranges compare by their items.
      if (x.lazy != y.lazy) return false;
      if (x.lazy != Lazy::none && x.lazy != Lazy::range) return &x == &y;
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      if (&x == &y) return true;
      for (size_t i = 0; i < x.items.size(); ++i)
        if (!equals(x.items[i], y.items[i], budget)) return false;
      return true;
    }
    case Value::Kind::dict: {
      const auto &x = a.as_dict(), &y = b.as_dict();
      if (x.size() != y.size()) return false;
      if (&x == &y) return true;
      for (const auto& [k, v] : x.entries) {
        const Value* w = y.find(k);
        if (!w || !equals(v, *w, budget)) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

int compare(const Value& a, const Value& b, Budget& budget, const char* op) {
  budget.tick();
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) return compare_numbers(a, b);
  if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (is_plain_sequence(a) && is_plain_sequence(b) && a.as_list().tuple == b.as_list().tuple) {
    const auto &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i], budget)) continue;
      return compare(x[i], y[i], budget, op);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  throw TemplateError(std::string("'") + op + "' not supported between instances of '" +
                      type_name(a) + "' and '" + type_name(b) + "'");
}

void fail_undefined(const Value& v) { throw TemplateError(v.undefined_message()); }

bool is_plain_sequence(const Value& v) { return v.is_list() && v.as_list().lazy == Lazy::none; }

}  // namespace wick::io::jinja
