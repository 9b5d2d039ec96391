#pragma once
// The values a Jinja template computes with: Python's None, bool, int, float, str, list, tuple
// and dict (JSON-like, string keys, insertion order kept), plus Jinja's Undefined, namespace()
// objects and callables. Containers are immutable and shared, so copying a Value is cheap; only
// a namespace is mutable (attribute assignment is the one mutation transformers' sandbox allows).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "io/jinja_error.h"

namespace wick::io::jinja {

class Value;
class Interp;

/// Deepest container nesting a value may have (JSON input or built by a template); it bounds
/// the recursion of printing, comparing and serialising.
constexpr uint32_t kMaxValueDepth = 256;

/// Work and size limits of one rendering; every loop that can be made long by the template or
/// its input charges it, so hostile templates end with an error instead of running away.
struct Budget {
  uint64_t steps = 0;
  uint64_t max_steps = 0;
  size_t max_bytes = 0;
  void tick(uint64_t n = 1) {
    steps += n;
    if (steps > max_steps) fail_steps();
  }
  /// Charges for producing `bytes` of string data and checks the size limit.
  void produce(size_t bytes) {
    if (bytes > max_bytes) fail_bytes();
    tick(1 + bytes / 64);
  }
  [[noreturn]] void fail_steps() const;
  [[noreturn]] void fail_bytes() const;
};

/// Arguments of a call: positional, then keyword in source order.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct ListData;
struct DictData;

/// What a list-like value is in Python: a list or tuple, or one of the lazy objects Jinja's
/// filters and Python's methods return, which differ in truthiness, len(), printing and JSON.
enum class Lazy : uint8_t { none, generator, dict_items, dict_keys, dict_values, range };
struct Namespace;
struct Function;

struct UndefinedTag {
  std::shared_ptr<const std::string> hint;  // what was looked up, for error messages
};
struct NoneTag {};

class Value {
 public:
  enum class Kind : uint8_t {
    undefined,
    none,
    boolean,
    integer,
    floating,
    string,
    list,
    dict,
    ns,
    function
  };

  Value() = default;  // Undefined
  static Value undefined(std::string hint);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  /// A list (or tuple); fails when nesting would exceed kMaxValueDepth.
  static Value list(std::vector<Value> items, bool tuple = false);
  /// A generator or dict view over `items`; a generator may carry the error its producer hit
  /// (Jinja raises it only when the generator is consumed).
  static Value lazy(std::vector<Value> items, Lazy kind, std::string deferred_error = {});
  /// range(start, stop, step) with its items.
  static Value range(std::vector<Value> items, int64_t start, int64_t stop, int64_t step);
  static Value dict(DictData d);
  static Value ns(std::shared_ptr<Namespace> n);
  static Value function(std::shared_ptr<const Function> f);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::undefined; }
  bool is_none() const { return kind() == Kind::none; }
  bool is_bool() const { return kind() == Kind::boolean; }
  bool is_int() const { return kind() == Kind::integer; }
  bool is_float() const { return kind() == Kind::floating; }
  bool is_string() const { return kind() == Kind::string; }
  bool is_list() const { return kind() == Kind::list; }
  bool is_dict() const { return kind() == Kind::dict; }
  bool is_ns() const { return kind() == Kind::ns; }
  bool is_function() const { return kind() == Kind::function; }
  /// int, float or bool (Python's numbers; bool is an int subclass).
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  /// int or bool.
  bool is_integral() const { return is_int() || is_bool(); }

  bool as_bool() const { return std::get<bool>(v_); }
  /// The integer value of an int or bool.
  int64_t as_int() const { return is_bool() ? int64_t(as_bool()) : std::get<int64_t>(v_); }
  /// The value of any number as a double.
  double as_float() const;
  const std::string& as_string() const { return *std::get<5>(v_); }
  const ListData& as_list() const { return *std::get<6>(v_); }
  const std::vector<Value>& items() const;
  const DictData& as_dict() const { return *std::get<7>(v_); }
  Namespace& as_ns() const { return *std::get<8>(v_); }
  const Function& as_function() const { return *std::get<9>(v_); }
  /// What an Undefined stands for ("'foo' is undefined"); empty for a plain Undefined.
  std::string undefined_message() const;
  /// Identity of the shared object (namespaces and functions compare by identity).
  const void* identity() const;

  /// Container nesting depth (0 for scalars and namespaces).
  uint32_t depth() const;
  /// Whether a namespace is reachable from this value.
  bool contains_ns() const;

 private:
  static Value from_list(ListData data);

  std::variant<UndefinedTag, NoneTag, bool, int64_t, double, std::shared_ptr<const std::string>,
               std::shared_ptr<const ListData>, std::shared_ptr<const DictData>,
               std::shared_ptr<Namespace>, std::shared_ptr<const Function>>
      v_;
};

struct ListData {
  std::vector<Value> items;
  bool tuple = false;
  Lazy lazy = Lazy::none;
  int64_t range_bounds[3] = {0, 0, 1};
  std::shared_ptr<const std::string> deferred_error;
  uint32_t depth = 1;
  bool has_ns = false;
};

/// String-keyed map in insertion order (Python dict); large ones get a hash index.
struct DictData {
  std::vector<std::pair<std::string, Value>> entries;
  uint32_t depth = 1;
  bool has_ns = false;

  const Value* find(std::string_view key) const;
  /// Inserts, or replaces the value in place (keeping the key's first position).
  void set(std::string key, Value v);
  size_t size() const { return entries.size(); }

 private:
  std::unordered_map<std::string, size_t> index_;
};

struct Namespace {
  DictData attrs;
};

/// A callable: a global (range, namespace, raise_exception, ...), a bound method ("abc".strip),
/// or a macro.
struct Function {
  std::string name;
  std::function<Value(Interp&, Args&)> call;
};

/// Python truthiness (Undefined is false).
bool truthy(const Value& v);
/// Python type name for messages ("str", "int", "list", "dict", "NoneType", "Undefined", ...).
const std::string& type_name(const Value& v);
/// Python float repr (shortest round trip; "1.0", "1e-05", "1e+16", "inf", "nan").
std::string format_float(double d);
/// Appends str(v) as Python and Jinja print it (Undefined prints as nothing).
void append_str(std::string& out, const Value& v, Budget& budget);
/// Appends repr(v).
void append_repr(std::string& out, const Value& v, Budget& budget);
/// str(v) as a new string.
std::string to_str(const Value& v, Budget& budget);
/// Python ==.
bool equals(const Value& a, const Value& b, Budget& budget);
/// Python ordering (<0, 0, >0) for numbers, strings and lists; a TypeError otherwise.
int compare(const Value& a, const Value& b, Budget& budget, const char* op);
/// Raises the error an Undefined raises when it is used as a value.
[[noreturn]] void fail_undefined(const Value& v);
/// A real list or tuple (not a generator, dict view or range).
bool is_plain_sequence(const Value& v);

}  // namespace wick::io::jinja
