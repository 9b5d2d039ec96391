#pragma once
// The generated text of one sequence as tokens arrive: incremental detokenisation, stop-string
// matching, and the text each token may release to a streaming reader (text that could still
// become the start of a stop string is held back until it cannot).
#include <optional>
#include <string>
#include <vector>

#include "wick/tokenizer.h"

namespace wick::detail {

class TextStream {
 public:
  /// `tokenizer` may be null (no text; stop strings are then an error).
  TextStream(const Tokenizer* tokenizer, bool skip_special_tokens, const std::vector<std::string>& stop_strings);

  struct Step {
    std::string piece;        // newly released text
    bool stopped = false;     // a stop string matched (the text now ends with it)
    std::string stop_string;  // which one
  };
  /// Adds a generated token. `eos`: its text is not part of the output. `last`: no token
  /// follows, so everything held back is released.
  Step push(int32_t id, bool eos, bool last);
  /// The text released so far (what a reader of the pieces has seen).
  std::string released_text() const { return text_.substr(0, released_); }
  /// Everything decoded so far, held-back text included.
  const std::string& text() const { return text_; }

 private:
  /// Bytes at the end of text_ that are a proper prefix of some stop string.
  size_t held_suffix() const;

  std::optional<StreamDecoder> decoder_;
  std::vector<std::string> stops_;
  size_t longest_stop_ = 0;
  std::string text_;
  size_t released_ = 0;
  bool closed_ = false;
};

}  // namespace wick::detail
