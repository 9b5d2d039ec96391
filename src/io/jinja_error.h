#pragma once
// Errors inside the Jinja engine. They carry only a message; the engine adds the template's
// origin and the line and column of the failing node when it turns them into wick::Error.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace wick::io::jinja {

/// A position in the template source (1-based; 0 = unknown).
struct Pos {
  uint32_t line = 0;
  uint32_t col = 0;
};

/// A syntax or runtime error of the template, located later.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& what) : std::runtime_error(what) {}
  TemplateError(const std::string& what, Pos pos) : std::runtime_error(what), pos_(pos) {}
  Pos pos() const { return pos_; }

 private:
  Pos pos_;
};

/// A work or size limit was hit: never deferred or caught by the template machinery.
class LimitError : public TemplateError {
 public:
  explicit LimitError(const std::string& what) : TemplateError(what) {}
};

}  // namespace wick::io::jinja
