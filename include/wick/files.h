#pragma once
// Writing files so that a crash or a full disk never leaves half of one: for tools built on
// wick that write their own outputs (plots, reports, configs).
#include <string>
#include <string_view>

namespace wick {

/// Writes `bytes` to `path` atomically: a temporary file in the same folder is written, synced
/// and renamed over `path`. On failure (wick::Error naming the file) `path` is untouched and
/// no temporary file is left.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace wick
