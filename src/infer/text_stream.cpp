#include "infer/text_stream.h"

#include <algorithm>

#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail {

TextStream::TextStream(const Tokenizer* tokenizer, bool skip_special_tokens,
                       const std::vector<std::string>& stop_strings)
    : stops_(stop_strings) {
  for (const std::string& s : stops_) {
    if (s.empty()) throw Error("generate: empty stop string");
    // The text holds whole characters, so a valid stop string matches on character boundaries
    // and the cut after it never splits one.
    if (tok::find_invalid_utf8(s) != std::string::npos)
      throw Error("generate: stop string \"" + s + "\" is not valid UTF-8");
    longest_stop_ = std::max(longest_stop_, s.size());
  }
  if (tokenizer) {
    decoder_.emplace(*tokenizer, skip_special_tokens);
  } else if (!stops_.empty()) {
    throw Error("generate: stop strings need a tokenizer");
  }
}

size_t TextStream::held_suffix() const {
  size_t held = 0;
  for (const std::string& s : stops_) {
    for (size_t k = std::min(s.size() - 1, text_.size()); k > held; --k) {
      if (text_.compare(text_.size() - k, k, s, 0, k) == 0) {
        held = k;
        break;
      }
    }
  }
  return held;
}

TextStream::Step TextStream::push(int32_t id, bool eos, bool last) {
  Step step;
  if (closed_ || !decoder_) return step;
  std::string fresh;
  if (!eos) fresh = decoder_->push(id);
  if (eos || last) fresh += decoder_->flush();
  // A new match must end inside the fresh text; it can start up to longest_stop_ - 1 bytes
  // before it.
  size_t from = text_.size() >= longest_stop_ ? text_.size() - longest_stop_ + 1 : 0;
  text_ += fresh;
  size_t match_end = std::string::npos;
  for (const std::string& s : stops_) {
    size_t pos = text_.find(s, from);
    if (pos != std::string::npos && pos + s.size() < match_end) {
      match_end = pos + s.size();
      step.stop_string = s;
    }
  }
  if (match_end != std::string::npos) {
    text_.resize(match_end);
    step.stopped = true;
  }
  bool final = last || eos || step.stopped;
  size_t limit = final ? text_.size() : text_.size() - held_suffix();
  if (limit > released_) {
    step.piece = text_.substr(released_, limit - released_);
    released_ = limit;
  }
  closed_ = final;
  return step;
}

}  // namespace wick::detail
