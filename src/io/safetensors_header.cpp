#include "io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>

#include "io/json.h"
#include "wick/error.h"

namespace wick::io {

namespace {

struct DTypeEntry {
  const char* name;
  size_t itemsize;
  std::optional<DType> wick;
};

const DTypeEntry kDTypes[] = {
    {"F64", 8, DType::f64},    {"F32", 4, DType::f32},     {"F16", 2, DType::f16},
    {"BF16", 2, DType::bf16},  {"I64", 8, DType::i64},     {"I32", 4, DType::i32},
    {"I16", 2, std::nullopt},  {"I8", 1, std::nullopt},    {"U8", 1, std::nullopt},
    {"BOOL", 1, DType::boolean}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

const DTypeEntry* find_dtype(std::string_view name) {
  for (const DTypeEntry& e : kDTypes)
    if (name == e.name) return &e;
  return nullptr;
}

// Shapes beyond this rank exist in no model; the cap also keeps messages that print a shape short.
constexpr size_t kMaxRank = 64;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(source + ": " + what);
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  // Appended piece by piece: g++ 12 warns falsely (-Wrestrict) on "[" + std::to_string(...).
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += "]";
  return s;
}

/// A JSON integer that is >= 0 (floats such as 2.0 are not accepted: the format stores integers).
bool as_unsigned(const Json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

SafetensorsTensorInfo parse_entry(const std::string& name, const Json& entry, uint64_t data_size,
                                  const std::string& source) {
  const std::string where = "tensor " + quote_name(name);
  if (!entry.is_object()) fail(source, where + ": expected an object, got " + json_type_name(entry));
  SafetensorsTensorInfo info;
  info.name = name;

  auto field = [&](const char* key) -> const Json& {
    auto it = entry.find(key);
    if (it == entry.end()) fail(source, where + ": missing \"" + key + "\"");
    return *it;
  };

  const Json& dtype = field("dtype");
  if (!dtype.is_string())
    fail(source, where + ": dtype: expected a string, got " + json_type_name(dtype));
  const DTypeEntry* dt = find_dtype(dtype.get_ref<const std::string&>());
  if (!dt) fail(source, where + ": unknown dtype " + quote_name(dtype.get_ref<const std::string&>()));
  info.dtype = dt->name;
  info.wick_dtype = dt->wick;

  const Json& shape = field("shape");
  if (!shape.is_array())
    fail(source, where + ": shape: expected an array, got " + json_type_name(shape));
  if (shape.size() > kMaxRank)
    fail(source, where + ": shape has " + std::to_string(shape.size()) + " dimensions; at most " +
                     std::to_string(kMaxRank) + " are supported");
  // The product of the non-zero dimensions, times itemsize, must fit in int64: the engine counts
  // elements, bytes and strides in signed 64 bits, and an empty tensor's strides still multiply
  // its other dimensions.
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t product = 1;
  bool empty = false, overflow = false;
  for (const Json& d : shape) {
    uint64_t v = 0;
    if (!as_unsigned(d, &v))
      fail(source, where + ": shape: dimensions must be non-negative integers, got " +
                       (d.is_number() ? d.dump() : std::string(json_type_name(d))));
    if (v > limit) fail(source, where + ": shape: dimension " + std::to_string(v) + " is too large");
    info.shape.push_back(static_cast<int64_t>(v));
    if (v == 0) empty = true;
    else if (!overflow && (__builtin_mul_overflow(product, v, &product) || product > limit))
      overflow = true;
  }
  uint64_t span = 0;
  if (overflow || __builtin_mul_overflow(product, dt->itemsize, &span) || span > limit)
    fail(source, where + ": shape " + shape_str(info.shape) + " " + info.dtype +
                     " is too large (its byte size overflows 64 bits)");
  const uint64_t nbytes = empty ? 0 : span;

  const Json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !as_unsigned(offsets[0], &info.begin) ||
      !as_unsigned(offsets[1], &info.end))
    fail(source, where + ": data_offsets must be two non-negative integers [begin, end]");
  if (info.begin > info.end)
    fail(source, where + ": data_offsets " + offsets_str(info.begin, info.end) +
                     " end before they begin");
  if (info.end - info.begin != nbytes)
    fail(source, where + ": data_offsets " + offsets_str(info.begin, info.end) + " hold " +
                     std::to_string(info.end - info.begin) + " bytes but shape " +
                     shape_str(info.shape) + " " + info.dtype + " needs " + std::to_string(nbytes));
  if (info.end > data_size)
    fail(source, where + ": data_offsets " + offsets_str(info.begin, info.end) +
                     " run past the end of the data block (" + std::to_string(data_size) +
                     " bytes)");
  return info;
}

void check_overlaps(const std::vector<SafetensorsTensorInfo>& tensors, const std::string& source) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(tensors[a].begin, tensors[a].end) < std::tie(tensors[b].begin, tensors[b].end);
  });
  // Empty tensors occupy no bytes and overlap nothing; among the rest, each must start at or after
  // the furthest end seen so far.
  const SafetensorsTensorInfo* furthest = nullptr;
  for (size_t i : order) {
    const SafetensorsTensorInfo& t = tensors[i];
    if (t.begin == t.end) continue;
    if (furthest && t.begin < furthest->end)
      fail(source, "tensors " + quote_name(furthest->name) + " " +
                       offsets_str(furthest->begin, furthest->end) + " and " + quote_name(t.name) +
                       " " + offsets_str(t.begin, t.end) + " overlap");
    if (!furthest || t.end > furthest->end) furthest = &t;
  }
}

}  // namespace

std::string quote_name(std::string_view name) {
  // Names come from untrusted files: keep messages short and free of control characters.
  constexpr size_t kMaxShown = 200;
  std::string out = "\"";
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return out + "\"";
}

size_t safetensors_itemsize(std::string_view dtype) {
  const DTypeEntry* e = find_dtype(dtype);
  return e ? e->itemsize : 0;
}

const char* safetensors_dtype_name(DType dtype) {
  for (const DTypeEntry& e : kDTypes)
    if (e.wick == dtype) return e.name;
  throw Error("safetensors: no safetensors dtype for " + std::string(wick::dtype_name(dtype)));
}

uint64_t safetensors_header_length(std::string_view prefix, uint64_t file_size,
                                   const std::string& source) {
  if (file_size < 8)
    fail(source, "file is " + std::to_string(file_size) +
                     " bytes, too short for a safetensors file (8-byte header length first)");
  if (prefix.size() < 8)
    fail(source, "only " + std::to_string(prefix.size()) + " bytes of the file were read");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(prefix[i]);
  if (n > file_size - 8)
    fail(source, "header length " + std::to_string(n) + " is larger than the rest of the file (" +
                     std::to_string(file_size - 8) + " bytes): truncated or not a safetensors file");
  if (n > kMaxSafetensorsHeader)
    fail(source, "header length " + std::to_string(n) + " exceeds the limit of " +
                     std::to_string(kMaxSafetensorsHeader) + " bytes");
  return n;
}

SafetensorsHeader parse_safetensors_header(std::string_view prefix, uint64_t file_size,
                                           const std::string& source) {
  uint64_t n = safetensors_header_length(prefix, file_size, source);
  if (prefix.size() - 8 < n)
    fail(source, "only " + std::to_string(prefix.size()) + " bytes of the file were read; the " +
                     "header needs " + std::to_string(8 + n));
  SafetensorsHeader h;
  h.data_offset = 8 + n;
  h.data_size = file_size - h.data_offset;

  // Depth 3 is all a valid header uses (root, entry, shape); a little slack for unknown fields.
  Json root = parse_json_strict(prefix.substr(8, n), source, 8);
  if (!root.is_object()) fail(source, std::string("header is ") + json_type_name(root) +
                                          ", expected a JSON object");
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        fail(source, std::string("__metadata__: expected an object, got ") +
                         json_type_name(value));
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail(source, "__metadata__: " + quote_name(mk) + ": expected a string, got " +
                           json_type_name(mv));
        h.metadata.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    h.tensors.push_back(parse_entry(key, value, h.data_size, source));
  }
  // nlohmann's objects iterate in key order, so tensors are already sorted by name.
  check_overlaps(h.tensors, source);
  return h;
}

}  // namespace wick::io
