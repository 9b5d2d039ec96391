#pragma once
// File helpers shared by every reader and writer of untrusted or precious files.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace wick::io {

/// Reads a whole file; fails with wick::Error naming the file when it is missing, unreadable,
/// a directory, or larger than `max_bytes`.
std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 32);

/// Writes a file atomically: `write` fills a temporary file next to `path` (same directory, so
/// the rename cannot cross file systems), which is flushed, synced and renamed over `path`.
/// On any failure the temporary file is removed and `path` is untouched.
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);
void write_file_atomic(const std::string& path, std::string_view bytes);

/// True when `path` exists and is a directory / a regular file.
bool is_directory(const std::string& path);
bool is_file(const std::string& path);

/// `dir/name` without doubling the separator.
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace wick::io
