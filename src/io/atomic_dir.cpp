#include "io/atomic_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "wick/error.h"

namespace wick::io {

namespace fs = std::filesystem;

namespace {

/// Flushes a folder's entries (the renames into it) to disk; best effort.
void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string make_temp_dir(const std::string& base, const char* tag) {
  std::string pattern = base + tag + "XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw Error(base + ": cannot create a temporary folder beside it: " + std::strerror(errno));
  return std::string(buf.data());
}

}  // namespace

void write_directory_atomic(const std::string& dir, const std::function<void(const std::string&)>& fill, bool replace) {
  std::string target = dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  if (target.empty()) throw Error("output folder: empty path");
  std::error_code ec;
  bool exists = fs::exists(fs::symlink_status(target, ec));
  if (exists) {
    if (!fs::is_directory(fs::symlink_status(target, ec)))
      throw Error(target + ": exists and is not a folder");
    if (!fs::is_empty(target, ec) && !replace)
      throw Error(target + ": exists and is not empty (pass --force to replace it)");
  }
  fs::path parent_path = fs::path(target).parent_path();
  if (parent_path.empty()) parent_path = ".";
  const std::string parent = parent_path.string();
  fs::create_directories(parent_path, ec);  // as save_pretrained does for a new path
  if (!fs::is_directory(parent, ec)) throw Error(target + ": cannot create the parent folder " + parent);

  std::string tmp = make_temp_dir(target, ".tmp-");
  try {
    fill(tmp);
    sync_directory(tmp);
    if (!exists || fs::is_empty(target, ec)) {
      // rename(2) replaces an empty folder in one step.
      if (::rename(tmp.c_str(), target.c_str()) != 0)
        throw Error(target + ": cannot rename " + tmp + " into place: " + std::strerror(errno));
    } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
      // Swapped atomically: `tmp` now holds the old folder.
      fs::remove_all(tmp, ec);
    } else {
      // No atomic exchange on this file system: move the old folder aside first. A crash
      // between the two renames leaves both folders beside `target`, never a mixed one.
      std::string old = make_temp_dir(target, ".old-");
      fs::remove(old, ec);
      if (::rename(target.c_str(), old.c_str()) != 0)
        throw Error(target + ": cannot move the old folder aside: " + std::strerror(errno));
      if (::rename(tmp.c_str(), target.c_str()) != 0) {
        int err = errno;
        ::rename(old.c_str(), target.c_str());
        throw Error(target + ": cannot rename " + tmp + " into place: " + std::strerror(err));
      }
      fs::remove_all(old, ec);
    }
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  sync_directory(parent);
}

}  // namespace wick::io
