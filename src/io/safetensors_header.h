#pragma once
// The safetensors header parser: pure (no files, no tensors), so that the fuzz target can drive it
// with arbitrary bytes. Everything a reader relies on is checked here, once.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "wick/safetensors.h"

namespace wick::io {

/// Headers larger than this are rejected before anything is allocated for them.
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

/// A validated safetensors header.
struct SafetensorsHeader {
  uint64_t data_offset = 0;  ///< file offset of the data block (8 + header length)
  uint64_t data_size = 0;    ///< bytes from data_offset to the end of the file
  std::vector<SafetensorsTensorInfo> tensors;  ///< sorted by name
  std::map<std::string, std::string> metadata;
};

/// `name` in double quotes for a message: control characters escaped, long names cut short.
std::string quote_name(std::string_view name);

/// Bytes per element of a safetensors dtype name ("F32" -> 4), 0 for a name that is not one.
size_t safetensors_itemsize(std::string_view dtype);
/// The safetensors name of a wick dtype (f32 -> "F32").
const char* safetensors_dtype_name(DType dtype);

/// The header length N stored in the first 8 bytes, validated against `file_size` and
/// kMaxSafetensorsHeader. `prefix` holds the first bytes of the file (at least 8 unless the file
/// is shorter). Errors name `source`.
uint64_t safetensors_header_length(std::string_view prefix, uint64_t file_size,
                                   const std::string& source);

/// Parses and validates the header. `prefix` holds the first bytes of a file of `file_size`
/// bytes: at least 8 + N of them (more are ignored). Throws wick::Error naming `source` and the
/// problem for anything that is not a valid header: bad length, JSON that is not an object,
/// repeated keys, an unknown dtype, a bad shape, offsets that do not match the shape, lie outside
/// the data block or overlap, metadata that is not a string->string map.
SafetensorsHeader parse_safetensors_header(std::string_view prefix, uint64_t file_size,
                                           const std::string& source);

}  // namespace wick::io
