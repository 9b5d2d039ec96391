#include "io/json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <vector>

#include "io/files.h"

namespace wick::io {

namespace {

[[noreturn]] void syntax_error(const Json::exception& e, const std::string& source) {
  // nlohmann's texts look like "[json.exception.parse_error.101] parse error at line 1, column 2:
  // syntax error ..."; keep what follows the tag (and, for syntax errors, the location).
  std::string what = e.what();
  size_t tag = what.find("] ");
  std::string text = tag == std::string::npos ? what : what.substr(tag + 2);
  // Besides syntax errors the parser throws out_of_range for numbers beyond double ("1e400").
  const auto* pe = dynamic_cast<const Json::parse_error*>(&e);
  if (!pe) throw Error(source + ": invalid JSON: " + text);
  size_t start = what.find_first_not_of(' ', what.find(':') + 1);
  throw Error(source + ": invalid JSON at byte " + std::to_string(pe->byte) + ": " +
              (start == std::string::npos ? text : what.substr(start)));
}

}  // namespace

Json parse_json(std::string_view text, const std::string& source) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    syntax_error(e, source);
  }
}

namespace {

template <class J>
J strict_parse(std::string_view text, const std::string& source, int max_depth) {
  // The parser reports structure events in document order; one key set per open object (an
  // empty marker for arrays) is enough to see repeats and depth as they happen.
  struct Level {
    bool object;
    std::string key;  // the key under which this value sits, for messages
    std::set<std::string> keys;
  };
  std::vector<Level> open;
  std::string last_key;
  auto path = [&](const std::string& key) {
    std::string p;
    for (size_t i = 1; i < open.size(); ++i) p += "\"" + open[i].key + "\".";
    return p + "\"" + key + "\"";
  };
  auto callback = [&](int, typename J::parse_event_t event, J& parsed) {
    switch (event) {
      case J::parse_event_t::object_start:
      case J::parse_event_t::array_start:
        if (static_cast<int>(open.size()) >= max_depth)
          throw Error(source + ": JSON nested deeper than " + std::to_string(max_depth) +
                      " levels");
        open.push_back({event == J::parse_event_t::object_start,
                        !open.empty() && open.back().object ? last_key : std::string("[]"), {}});
        break;
      case J::parse_event_t::object_end:
      case J::parse_event_t::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case J::parse_event_t::key: {
        last_key = parsed.template get<std::string>();
        if (!open.empty() && !open.back().keys.insert(last_key).second)
          throw Error(source + ": duplicate key " + path(last_key));
        break;
      }
      case J::parse_event_t::value: break;
    }
    return true;
  };
  try {
    return J::parse(text.begin(), text.end(), callback);
  } catch (const typename J::exception& e) {
    syntax_error(e, source);
  }
}

}  // namespace

Json parse_json_strict(std::string_view text, const std::string& source, int max_depth) {
  return strict_parse<Json>(text, source, max_depth);
}

nlohmann::ordered_json parse_json_strict_ordered(std::string_view text, const std::string& source,
                                                 int max_depth) {
  return strict_parse<nlohmann::ordered_json>(text, source, max_depth);
}

Json read_json_file(const std::string& path, size_t max_bytes) {
  return parse_json(read_file(path, max_bytes), path);
}

const char* json_type_name(const Json& j) { return json_type_name(j.type()); }
const char* json_type_name(const nlohmann::ordered_json& j) { return json_type_name(j.type()); }

const char* json_type_name(nlohmann::detail::value_t type) {
  switch (type) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

namespace {

[[noreturn]] void type_error(const Json& j, const std::string& source, std::string_view key,
                             const char* expected) {
  throw Error(source + ": " + std::string(key) + ": expected " + expected + ", got " +
              json_type_name(j));
}

template <class T>
T integer_as(const Json& j, const std::string& source, std::string_view key) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      throw Error(source + ": " + std::string(key) + ": " + std::to_string(v) + " is out of range");
    return static_cast<T>(v);
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
      throw Error(source + ": " + std::string(key) + ": " + std::to_string(v) + " is out of range");
    return static_cast<T>(v);
  }
  // 4096.0 is accepted as an integer (some configs are written by tools that emit floats).
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) &&
        d >= static_cast<double>(std::numeric_limits<T>::min()) &&
        d <= static_cast<double>(std::numeric_limits<T>::max()))
      return static_cast<T>(d);
  }
  type_error(j, source, key, "an integer");
}

}  // namespace

template <>
bool json_as<bool>(const Json& j, const std::string& source, std::string_view key) {
  if (!j.is_boolean()) type_error(j, source, key, "a boolean");
  return j.get<bool>();
}
template <>
int json_as<int>(const Json& j, const std::string& source, std::string_view key) {
  return integer_as<int>(j, source, key);
}
template <>
int64_t json_as<int64_t>(const Json& j, const std::string& source, std::string_view key) {
  return integer_as<int64_t>(j, source, key);
}
template <>
uint64_t json_as<uint64_t>(const Json& j, const std::string& source, std::string_view key) {
  return integer_as<uint64_t>(j, source, key);
}
template <>
double json_as<double>(const Json& j, const std::string& source, std::string_view key) {
  if (!j.is_number()) type_error(j, source, key, "a number");
  return j.get<double>();
}
template <>
float json_as<float>(const Json& j, const std::string& source, std::string_view key) {
  return static_cast<float>(json_as<double>(j, source, key));
}
template <>
std::string json_as<std::string>(const Json& j, const std::string& source, std::string_view key) {
  if (!j.is_string()) type_error(j, source, key, "a string");
  return j.get<std::string>();
}

}  // namespace wick::io
