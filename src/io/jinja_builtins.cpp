// Global functions of transformers' Jinja environment (range, dict, namespace, joiner,
// raise_exception, strftime_now) and the Python methods of str, dict and list that templates
// call ("x".strip(), message.get('k'), ...).
#include <chrono>
#include <cmath>

#include "io/jinja_eval.h"
#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

// Jinja's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

[[noreturn]] void fail(const std::string& msg) { throw TemplateError(msg); }

Value make_fn(std::string name, std::function<Value(Interp&, Args&)> f) {
  auto fn = std::make_shared<Function>();
  fn->name = std::move(name);
  fn->call = std::move(f);
  return Value::function(std::move(fn));
}

const std::string& want_string(const Value& v, const std::string& what) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string()) fail(what + " must be a string, not " + type_name(v));
  return v.as_string();
}

int64_t want_int(const Value& v, const std::string& what) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_integral()) fail(what + " must be an integer, not " + type_name(v));
  return v.as_int();
}

std::optional<std::string> opt_string(const Value& v, const std::string& what) {
  if (unset(v) || v.is_none()) return std::nullopt;
  return want_string(v, what);
}

Value string_list(const std::vector<std::string>& parts, Budget& budget) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::string(p));
  budget.tick(items.size());
  return Value::list(std::move(items));
}

// --- strftime in the C locale (what Python's datetime.strftime gives on Linux) ---

std::string format_time(const std::string& fmt, const CivilTime& t) {
  using namespace std::chrono;
  static const char* days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                               "Thursday", "Friday", "Saturday"};
  static const char* months[] = {"January", "February", "March",     "April",   "May",      "June",
                                 "July",    "August",   "September", "October", "November", "December"};
  year_month_day ymd{year{t.year}, month{static_cast<unsigned>(t.month)},
                     day{static_cast<unsigned>(t.day)}};
  if (!ymd.ok() || t.hour < 0 || t.hour > 23 || t.minute < 0 || t.minute > 59 || t.second < 0 ||
      t.second > 61)
    fail("strftime_now: the clock holds an invalid date");
  unsigned wd = weekday{sys_days{ymd}}.c_encoding();
  int yday = static_cast<int>((sys_days{ymd} - sys_days{year{t.year} / January / 1}).count()) + 1;
  std::string out;
  auto num = [&](int v, int width, char pad, bool no_pad) {
    std::string s = std::to_string(v);
    if (!no_pad)
      while (static_cast<int>(s.size()) < width) s.insert(s.begin(), pad);
    out += s;
  };
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i]);
      continue;
    }
    if (++i >= fmt.size()) fail("strftime_now: format ends with '%'");
    bool no_pad = false;
    if (fmt[i] == '-') {
      no_pad = true;
      if (++i >= fmt.size()) fail("strftime_now: format ends with '%-'");
    }
    int hour12 = t.hour % 12 == 0 ? 12 : t.hour % 12;
    switch (fmt[i]) {
      case 'a': out += std::string(days[wd]).substr(0, 3); break;
      case 'A': out += days[wd]; break;
      case 'b':
      case 'h': out += std::string(months[t.month - 1]).substr(0, 3); break;
      case 'B': out += months[t.month - 1]; break;
      case 'c': out += format_time("%a %b %e %H:%M:%S %Y", t); break;
      case 'd': num(t.day, 2, '0', no_pad); break;
      case 'e': num(t.day, 2, ' ', no_pad); break;
      case 'H': num(t.hour, 2, '0', no_pad); break;
      case 'I': num(hour12, 2, '0', no_pad); break;
      case 'j': num(yday, 3, '0', no_pad); break;
      case 'm': num(t.month, 2, '0', no_pad); break;
      case 'M': num(t.minute, 2, '0', no_pad); break;
      case 'p': out += t.hour < 12 ? "AM" : "PM"; break;
      case 'S': num(t.second, 2, '0', no_pad); break;
      case 'u': num(wd == 0 ? 7 : static_cast<int>(wd), 1, '0', no_pad); break;
      case 'w': num(static_cast<int>(wd), 1, '0', no_pad); break;
      case 'y': num(t.year % 100, 2, '0', no_pad); break;
      case 'Y': num(t.year, 1, '0', no_pad); break;
      case 'x': out += format_time("%m/%d/%y", t); break;
      case 'X': out += format_time("%H:%M:%S", t); break;
      case 'D': out += format_time("%m/%d/%y", t); break;
      case 'F': out += format_time("%Y-%m-%d", t); break;
      case 'T': out += format_time("%H:%M:%S", t); break;
      case 'R': out += format_time("%H:%M", t); break;
      case 'n': out += "\n"; break;
      case 't': out += "\t"; break;
      case '%': out += "%"; break;
      case 'z':
      case 'Z': break;  // datetime.now() is naive: no zone
      default: fail(std::string("strftime_now: unsupported directive %") + fmt[i]);
    }
  }
  return out;
}

Value dict_from_args(Interp& in, Args& args, const std::string& what) {
  DictData d;
  if (args.pos.size() > 1) fail(what + " expected at most 1 positional argument");
  if (args.pos.size() == 1) {
    const Value& src = args.pos[0];
    if (src.is_dict()) {
      for (const auto& [k, v] : src.as_dict().entries) d.set(k, v);
    } else {
      for (const auto& pair : in.iterate(src)) {
        auto kv = in.iterate(pair);
        if (kv.size() != 2) fail(what + ": sequence elements must be key/value pairs");
        d.set(want_string(kv[0], what + " key"), kv[1]);
      }
    }
  }
  for (auto& [k, v] : args.kw) d.set(k, v);
  return Value::dict(std::move(d));
}

// Python str methods that exist but wick does not implement: calling one is a clear error
// rather than a silently different result.
bool is_unimplemented_str_method(const std::string& n) {
  static const char* names[] = {"format", "format_map", "encode", "center", "ljust", "rjust",
                                "zfill", "expandtabs", "casefold", "swapcase", "translate",
                                "maketrans", "partition", "rpartition", "isnumeric", "isdecimal",
                                "isidentifier", "isprintable", "istitle", "isascii", "index",
                                "rindex"};
  for (const char* x : names)
    if (n == x) return true;
  return false;
}

Value str_method(const Value& self, const std::string& n) {
  const std::string name = "str." + n;
  auto method = [&](auto body) {
    return make_fn(name, [self, name, body](Interp& in, Args& args) -> Value {
      return body(in, self.as_string(), name, args);
    });
  };
  if (n == "strip" || n == "lstrip" || n == "rstrip") {
    bool l = n != "rstrip", r = n != "lstrip";
    return method([l, r](Interp&, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"chars"});
      return Value::string(py_strip(s, opt_string(p[0], nm + " arg"), l, r));
    });
  }
  if (n == "split" || n == "rsplit") {
    bool right = n == "rsplit";
    return method([right](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"sep", "maxsplit"});
      int64_t maxsplit = unset(p[1]) ? -1 : want_int(p[1], "maxsplit");
      in.budget().tick(s.size() / 64);
      return string_list(py_split(s, opt_string(p[0], "sep"), maxsplit, right), in.budget());
    });
  }
  if (n == "splitlines") {
    return method([](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      bind_args(nm, a, {});
      return string_list(py_splitlines(s), in.budget());
    });
  }
  if (n == "startswith" || n == "endswith") {
    bool starts = n == "startswith";
    return method([starts](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"prefix"}, 1);
      std::vector<Value> options = p[0].is_list() && p[0].as_list().tuple
                                       ? p[0].items()
                                       : std::vector<Value>{p[0]};
      for (const auto& o : options) {
        const std::string& x = want_string(o, nm + " arg");
        bool hit = x.size() <= s.size() &&
                   (starts ? s.compare(0, x.size(), x) == 0
                           : s.compare(s.size() - x.size(), x.size(), x) == 0);
        if (hit) return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (n == "replace") {
    return method([](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"old", "new", "count"}, 2);
      int64_t count = unset(p[2]) ? -1 : want_int(p[2], "count");
      std::string r = py_replace(s, want_string(p[0], "old"), want_string(p[1], "new"), count,
                                 in.budget().max_bytes);
      in.budget().produce(r.size());
      return Value::string(std::move(r));
    });
  }
  if (n == "upper" || n == "lower" || n == "capitalize" || n == "title") {
    return method([n](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      bind_args(nm, a, {});
      in.budget().tick(s.size() / 64);
      return Value::string(n == "upper"        ? py_upper(s)
                           : n == "lower"      ? py_lower(s)
                           : n == "capitalize" ? py_capitalize(s)
                                               : py_title(s));
    });
  }
  if (n == "find" || n == "rfind" || n == "count") {
    return method([n](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"sub"}, 1);
      const std::string& sub = want_string(p[0], "sub");
      in.budget().tick(s.size() / 64);
      if (n == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s) + 1));
        int64_t c = 0;
        for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size()))
          ++c;
        return Value::integer(c);
      }
      size_t at = n == "find" ? s.find(sub) : s.rfind(sub);
      if (at == std::string::npos) return Value::integer(-1);
      return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, at))));
    });
  }
  if (n == "join") {
    return method([](Interp& in, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"iterable"}, 1);
      std::string out;
      bool first = true;
      for (const auto& item : in.iterate(p[0])) {
        if (!first) out += s;
        first = false;
        out += want_string(item, "sequence item");
        if (out.size() > in.budget().max_bytes) in.budget().fail_bytes();
      }
      in.budget().produce(out.size());
      return Value::string(std::move(out));
    });
  }
  if (n == "removeprefix" || n == "removesuffix") {
    bool prefix = n == "removeprefix";
    return method([prefix](Interp&, const std::string& s, const std::string& nm, Args& a) {
      auto p = bind_args(nm, a, {"affix"}, 1);
      const std::string& x = want_string(p[0], nm + " arg");
      if (x.size() <= s.size()) {
        if (prefix && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
        if (!prefix && s.compare(s.size() - x.size(), x.size(), x) == 0)
          return Value::string(s.substr(0, s.size() - x.size()));
      }
      return Value::string(s);
    });
  }
  if (n == "isdigit" || n == "isalpha" || n == "isalnum" || n == "isspace" || n == "islower" ||
      n == "isupper") {
    return method([n](Interp&, const std::string& s, const std::string& nm, Args& a) {
      bind_args(nm, a, {});
      return Value::boolean(py_is(s, n));
    });
  }
  if (is_unimplemented_str_method(n))
    return make_fn(name, [name](Interp&, Args&) -> Value {
      fail(name + "() is not supported by wick's template engine");
    });
  return Value::undefined("");  // not a str attribute
}

Value dict_method(const Value& self, const std::string& n) {
  const std::string name = "dict." + n;
  if (n == "items" || n == "keys" || n == "values") {
    return make_fn(name, [self, n, name](Interp& in, Args& a) {
      bind_args(name, a, {});
      std::vector<Value> out;
      for (const auto& [k, v] : self.as_dict().entries) {
        if (n == "items")
          out.push_back(Value::list({Value::string(k), v}, true));
        else
          out.push_back(n == "keys" ? Value::string(k) : v);
      }
      in.budget().tick(out.size());
      return Value::lazy(std::move(out), n == "items"  ? Lazy::dict_items
                                         : n == "keys" ? Lazy::dict_keys
                                                       : Lazy::dict_values);
    });
  }
  if (n == "get") {
    return make_fn(name, [self, name](Interp&, Args& a) {
      auto p = bind_args(name, a, {"key", "default"}, 1);
      if (p[0].is_string())
        if (const Value* v = self.as_dict().find(p[0].as_string())) return *v;
      return unset(p[1]) ? Value::none() : p[1];
    });
  }
  if (n == "copy") {
    return make_fn(name, [self, name](Interp&, Args& a) {
      bind_args(name, a, {});
      return self;
    });
  }
  if (n == "pop" || n == "popitem" || n == "setdefault" || n == "update" || n == "clear")
    return Value::undefined("access to attribute '" + n + "' of 'dict' object is unsafe.");
  if (n == "fromkeys")
    return make_fn(name, [name](Interp&, Args&) -> Value {
      fail(name + "() is not supported by wick's template engine");
    });
  return Value::undefined("");
}

Value list_method(const Value& self, const std::string& n) {
  const std::string name = (self.as_list().tuple ? "tuple." : "list.") + n;
  if (n == "index" || n == "count") {
    return make_fn(name, [self, n, name](Interp& in, Args& a) {
      auto p = bind_args(name, a, {"value"}, 1);
      int64_t count = 0;
      const auto& items = self.items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (!equals(items[i], p[0], in.budget())) continue;
        if (n == "index") return Value::integer(static_cast<int64_t>(i));
        ++count;
      }
      if (n == "index") fail(name + "(x): x not in list");
      return Value::integer(count);
    });
  }
  if (n == "copy" && !self.as_list().tuple) {
    return make_fn(name, [self, name](Interp&, Args& a) {
      bind_args(name, a, {});
      return self;
    });
  }
  if (!self.as_list().tuple && (n == "append" || n == "clear" || n == "pop" || n == "reverse" ||
                                n == "insert" || n == "sort" || n == "extend" || n == "remove"))
    return Value::undefined("access to attribute '" + n + "' of 'list' object is unsafe.");
  return Value::undefined("");
}

}  // namespace

std::vector<Value> bind_args(const std::string& what, Args& args,
                             std::initializer_list<const char*> params, size_t required) {
  std::vector<Value> out(params.size());
  std::vector<bool> given(params.size(), false);
  if (args.pos.size() > params.size())
    fail(what + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
         std::to_string(args.pos.size()) + " given)");
  for (size_t i = 0; i < args.pos.size(); ++i) {
    out[i] = args.pos[i];
    given[i] = true;
  }
  for (auto& [k, v] : args.kw) {
    size_t i = 0;
    for (const char* p : params) {
      if (k == p) break;
      ++i;
    }
    if (i == params.size()) fail(what + "() got an unexpected keyword argument '" + k + "'");
    if (given[i]) fail(what + "() got multiple values for argument '" + k + "'");
    out[i] = v;
    given[i] = true;
  }
  for (size_t i = 0; i < required; ++i)
    if (!given[i])
      fail(what + "() missing required argument '" + std::string(params.begin()[i]) + "'");
  return out;
}

std::optional<Value> find_method(const Value& obj, const std::string& name) {
  Value m;
  if (obj.is_string())
    m = str_method(obj, name);
  else if (obj.is_dict())
    m = dict_method(obj, name);
  else if (is_plain_sequence(obj))
    m = list_method(obj, name);
  else
    return std::nullopt;
  if (m.is_undefined() && m.undefined_message().empty()) return std::nullopt;
  return m;
}

namespace {

std::unordered_map<std::string, Value> make_globals() {
  std::unordered_map<std::string, Value> g;
  g["range"] = make_fn("range", [](Interp& in, Args& a) {
    if (!a.kw.empty()) fail("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3)
      fail("range expected 1 to 3 arguments, got " + std::to_string(a.pos.size()));
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = want_int(a.pos[0], "range() argument");
    } else {
      start = want_int(a.pos[0], "range() argument");
      stop = want_int(a.pos[1], "range() argument");
      if (a.pos.size() == 3) step = want_int(a.pos[2], "range() argument");
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    // Count in double to stay clear of overflow; the sandbox limit keeps counts small.
    double span = (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
    double count = span > 0 ? std::ceil(span) : 0;
    if (count > static_cast<double>(kMaxRange))
      fail("range too big: the sandbox allows at most " + std::to_string(kMaxRange) + " items");
    std::vector<Value> items;
    for (int64_t i = 0, v = start; i < static_cast<int64_t>(count); ++i, v += step)
      items.push_back(Value::integer(v));
    in.budget().tick(items.size());
    return Value::range(std::move(items), start, stop, step);
  });
  g["dict"] = make_fn("dict", [](Interp& in, Args& a) { return dict_from_args(in, a, "dict"); });
  g["namespace"] = make_fn("namespace", [](Interp& in, Args& a) {
    Value d = dict_from_args(in, a, "namespace");
    if (d.contains_ns()) fail("storing a namespace inside a namespace is not supported");
    auto ns = std::make_shared<Namespace>();
    ns->attrs = d.as_dict();
    return Value::ns(std::move(ns));
  });
  g["joiner"] = make_fn("joiner", [](Interp&, Args& a) {
    auto p = bind_args("joiner", a, {"sep"});
    std::string sep = unset(p[0]) ? ", " : want_string(p[0], "joiner sep");
    auto used = std::make_shared<bool>(false);
    return make_fn("joiner", [sep, used](Interp&, Args& b) {
      bind_args("joiner", b, {});
      if (!*used) {
        *used = true;
        return Value::string("");
      }
      return Value::string(sep);
    });
  });
  g["raise_exception"] = make_fn("raise_exception", [](Interp& in, Args& a) -> Value {
    auto p = bind_args("raise_exception", a, {"message"}, 1);
    fail("raise_exception: " + to_str(p[0], in.budget()));
  });
  g["strftime_now"] = make_fn("strftime_now", [](Interp& in, Args& a) {
    auto p = bind_args("strftime_now", a, {"format"}, 1);
    const std::string& fmt = want_string(p[0], "strftime_now format");
    if (fmt.size() > 1024) fail("strftime_now: format too long");
    return Value::string(format_time(fmt, in.now()));
  });
  for (const char* name : {"lipsum", "cycler"})
    g[name] = make_fn(name, [name = std::string(name)](Interp&, Args&) -> Value {
      fail(name + "() is not supported by wick's template engine");
    });
  return g;
}

}  // namespace

const std::unordered_map<std::string, Value>& template_globals() {
  static const std::unordered_map<std::string, Value> globals = make_globals();
  return globals;
}

}  // namespace wick::io::jinja
