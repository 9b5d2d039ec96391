#pragma once
#include <stdexcept>
#include <string>

namespace wick {

/// The one exception type wick throws: bad shapes or dtypes when an op is built, bad input
/// files, failures inside an evaluation (rethrown to whoever waits), and out-of-memory.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace wick
