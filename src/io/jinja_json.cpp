#include "io/jinja_json.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "io/jinja_text.h"

namespace wick::io::jinja {

namespace {

template <class J>
Value convert(const J& j, uint32_t depth) {
  if (depth > kMaxValueDepth)
    throw TemplateError("JSON nested deeper than " + std::to_string(kMaxValueDepth) + " levels");
  switch (j.type()) {
    case J::value_t::null: return Value::none();
    case J::value_t::boolean: return Value::boolean(j.template get<bool>());
    case J::value_t::number_integer: return Value::integer(j.template get<int64_t>());
    case J::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw TemplateError("JSON integer " + std::to_string(u) + " is out of range");
      return Value::integer(static_cast<int64_t>(u));
    }
    case J::value_t::number_float: return Value::floating(j.template get<double>());
    case J::value_t::string: return Value::string(j.template get_ref<const std::string&>());
    case J::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& it : j) items.push_back(convert(it, depth + 1));
      return Value::list(std::move(items));
    }
    case J::value_t::object: {
      DictData d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(it.key(), convert(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default: throw TemplateError("unsupported JSON value (binary data)");
  }
}

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  static const char* hex = "0123456789abcdef";
  auto u4 = [&](uint32_t v) {
    out += "\\u";
    for (int i = 3; i >= 0; --i) out.push_back(hex[(v >> (4 * i)) & 0xF]);
  };
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20)
            u4(c);
          else
            out.push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    CodePoint cp = decode_at(s, i);
    if (!ensure_ascii) {
      out.append(s, i, cp.size);
    } else if (cp.value >= 0x10000 && !(cp.value >= 0xDC80 && cp.value <= 0xDCFF && cp.size == 1)) {
      uint32_t v = cp.value - 0x10000;
      u4(0xD800 + (v >> 10));
      u4(0xDC00 + (v & 0x3FF));
    } else {
      u4(cp.value);
    }
    i += cp.size;
  }
  out.push_back('"');
}

struct Dumper {
  const JsonDumpOptions& opt;
  Budget& budget;
  std::string item_sep, key_sep;

  void newline(std::string& out, int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += *opt.indent;
    if (out.size() > budget.max_bytes) budget.fail_bytes();
  }

  void dump(std::string& out, const Value& v, int level) {
    budget.tick();
    if (out.size() > budget.max_bytes) budget.fail_bytes();
    switch (v.kind()) {
      case Value::Kind::none: out += "null"; return;
      case Value::Kind::boolean: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::integer: out += std::to_string(v.as_int()); return;
      case Value::Kind::floating: {
        double d = v.as_float();
        if (std::isnan(d))
          out += "NaN";
        else if (std::isinf(d))
          out += d < 0 ? "-Infinity" : "Infinity";
        else
          out += format_float(d);
        return;
      }
      case Value::Kind::string:
        budget.tick(v.as_string().size() / 64);
        dump_string(out, v.as_string(), opt.ensure_ascii);
        return;
      case Value::Kind::list: {
        if (v.as_list().lazy != Lazy::none)
          throw TemplateError("Object of type " + type_name(v) + " is not JSON serializable");
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          return;
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_sep;
          if (opt.indent) newline(out, level + 1);
          dump(out, items[i], level + 1);
        }
        if (opt.indent) newline(out, level);
        out.push_back(']');
        return;
      }
      case Value::Kind::dict: {
        const auto& d = v.as_dict();
        if (d.size() == 0) {
          out += "{}";
          return;
        }
        std::vector<const std::pair<std::string, Value>*> entries;
        entries.reserve(d.size());
        for (const auto& e : d.entries) entries.push_back(&e);
        if (opt.sort_keys)
          std::stable_sort(entries.begin(), entries.end(),
                           [](auto* a, auto* b) { return a->first < b->first; });
        out.push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_sep;
          if (opt.indent) newline(out, level + 1);
          dump_string(out, entries[i]->first, opt.ensure_ascii);
          out += key_sep;
          dump(out, entries[i]->second, level + 1);
        }
        if (opt.indent) newline(out, level);
        out.push_back('}');
        return;
      }
      default:
        throw TemplateError("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }
};

}  // namespace

Value value_from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }
Value value_from_json(const nlohmann::json& j) { return convert(j, 0); }

void dump_json(std::string& out, const Value& v, const JsonDumpOptions& opt, Budget& budget) {
  Dumper d{opt, budget, opt.item_sep.value_or(opt.indent ? "," : ", "), opt.key_sep.value_or(": ")};
  d.dump(out, v, 0);
}

}  // namespace wick::io::jinja
