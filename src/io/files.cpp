#include "io/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "wick/error.h"

namespace wick::io {

std::string read_file(const std::string& path, size_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, expected a file");
  if (static_cast<size_t>(st.st_size) > max_bytes)
    throw Error(path + ": file is " + std::to_string(st.st_size) + " bytes; the limit is " +
                std::to_string(max_bytes));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = out.empty() ? 0 : std::fread(out.data(), 1, out.size(), f);
  bool failed = std::ferror(f);
  std::fclose(f);
  if (failed || got != out.size()) throw Error(path + ": read failed");
  return out;
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  // A random suffix keeps concurrent writers of the same path from sharing a temporary file.
  std::random_device rd;
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  try {
    write(f);
    if (std::fflush(f) != 0 || std::ferror(f) || ::fsync(::fileno(f)) != 0)
      throw Error(path + ": write failed: " + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": write failed: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename the temporary file into place: " + std::strerror(err));
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic(path, [&](std::FILE* f) {
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
      throw Error(path + ": write failed: " + std::strerror(errno));
  });
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace wick::io
