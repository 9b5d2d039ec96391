// The public face of io::write_file_atomic (wick/files.h).
#include "wick/files.h"

#include "io/files.h"

namespace wick {

void write_file_atomic(const std::string& path, std::string_view bytes) {
  io::write_file_atomic(path, bytes);
}

}  // namespace wick
