#pragma once
// Added tokens (the library's AddedVocabulary): tokens matched in the text before the model
// sees it, leftmost-longest, in two passes: non-normalized tokens on the raw text, then
// normalized tokens on each normalized remaining piece. Ids follow the library's rule, not the
// "id" fields of the file: an existing token keeps its id, a new one gets the next free id
// after the model's vocabulary.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "io/tok_components.h"

namespace wick::detail::tok {

struct AddedToken {
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

/// A segment of the text: an added token (id >= 0) or text [begin, end) (id < 0).
struct Segment {
  int32_t id;
  size_t begin, end;
};

class AddedVocab {
 public:
  /// Reads the "added_tokens" array; `normalizer` (may be null) gives the matching form of the
  /// normalized tokens.
  void load(const io::Json& arr, const Where& where, const Model& model,
            const Normalizer* normalizer);

  /// Cuts `s` at the non-normalized (raw = true) or normalized tokens.
  void split(std::string_view s, bool raw, std::vector<Segment>& out) const;
  bool has_normalized() const { return !norm_.empty(); }

  std::optional<int32_t> id_of(std::string_view content) const;
  /// The string decode() uses for an added id (its normalized form when it has one), or null.
  const std::string* decode_string(int32_t id) const;
  bool is_special_string(std::string_view s) const { return special_.count(std::string(s)) > 0; }
  int32_t id_bound() const { return id_bound_; }

 private:
  // Byte trie for leftmost-longest matching.
  struct Trie {
    struct Node {
      int32_t id = -1;
      std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    };
    std::vector<Node> nodes;
    bool first[256] = {};
    bool empty() const { return nodes.size() <= 1; }
    void insert(std::string_view key, int32_t id);
    // Longest token starting at s[pos]: its end, or npos.
    size_t longest(std::string_view s, size_t pos, int32_t& id) const;
  };
  void build_tries();

  std::unordered_map<std::string, int32_t> by_content_;
  std::unordered_map<int32_t, AddedToken> by_id_;
  std::unordered_map<int32_t, std::string> normalized_form_;
  std::unordered_set<std::string> special_;
  Trie raw_, norm_;
  int32_t id_bound_ = 0;
};

}  // namespace wick::detail::tok
