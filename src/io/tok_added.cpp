#include "io/tok_added.h"

#include <algorithm>

#include "io/tok_unicode.h"
#include "io/tok_vocab.h"
#include "wick/error.h"

namespace wick::detail::tok {

void AddedVocab::Trie::insert(std::string_view key, int32_t id) {
  if (nodes.empty()) nodes.emplace_back();
  if (key.empty()) return;
  first[static_cast<uint8_t>(key[0])] = true;
  int32_t n = 0;
  for (char ch : key) {
    uint8_t b = static_cast<uint8_t>(ch);
    auto& next = nodes[n].next;
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t{-1}));
    if (it != next.end() && it->first == b) {
      n = it->second;
    } else {
      int32_t child = static_cast<int32_t>(nodes.size());
      next.insert(it, {b, child});
      nodes.emplace_back();
      n = child;
    }
  }
  nodes[n].id = id;
}

size_t AddedVocab::Trie::longest(std::string_view s, size_t pos, int32_t& id) const {
  size_t best = std::string_view::npos;
  int32_t n = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    uint8_t b = static_cast<uint8_t>(s[i]);
    const auto& next = nodes[n].next;
    int32_t child = -1;
    if (next.size() <= 8) {
      for (const auto& [k, c] : next)
        if (k == b) {
          child = c;
          break;
        }
    } else {
      auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t{-1}));
      if (it != next.end() && it->first == b) child = it->second;
    }
    if (child < 0) break;
    n = child;
    if (nodes[n].id >= 0) {
      best = i + 1;
      id = nodes[n].id;
    }
  }
  return best;
}

void AddedVocab::load(const io::Json& arr, const Where& where, const Model& model,
                      const Normalizer* normalizer) {
  id_bound_ = model.id_bound();
  if (arr.is_null()) {
    build_tries();
    return;
  }
  if (!arr.is_array()) throw Error(where.str() + ": expected an array, got " + io::json_type_name(arr));
  int64_t next_id = static_cast<int64_t>(model.vocab_entries());
  for (size_t i = 0; i < arr.size(); ++i) {
    Where w = where.index(i);
    const io::Json& t = require_object(arr[i], w);
    AddedToken tok;
    tok.content = get_string(t, "content", w);
    tok.special = get_bool(t, "special", w, false);
    tok.single_word = get_bool(t, "single_word", w, false);
    tok.lstrip = get_bool(t, "lstrip", w, false);
    tok.rstrip = get_bool(t, "rstrip", w, false);
    tok.normalized = get_bool(t, "normalized", w, !tok.special);
    // The "id" field is only checked for type; the library recomputes ids.
    if (t.contains("id")) io::json_as<int64_t>(t["id"], w.str(), "id");
    if (tok.content.empty()) continue;
    int32_t id;
    auto known = by_content_.find(tok.content);
    if (known != by_content_.end()) {
      id = known->second;
    } else if (auto mid = model.token_to_id(tok.content)) {
      id = *mid;
    } else {
      if (next_id > kMaxTokenId) throw Error(w.str() + ": too many added tokens");
      id = static_cast<int32_t>(next_id++);
    }
    if (tok.normalized && normalizer) {
      std::string form = tok.content;
      normalizer->normalize(form);
      if (form != tok.content)
        normalized_form_[id] = std::move(form);
      else
        normalized_form_.erase(id);
    } else {
      normalized_form_.erase(id);
    }
    by_content_[tok.content] = id;
    if (tok.special) special_.insert(tok.content);
    id_bound_ = std::max(id_bound_, id + 1);
    by_id_[id] = std::move(tok);
  }
  build_tries();
}

void AddedVocab::build_tries() {
  raw_ = Trie{};
  norm_ = Trie{};
  raw_.nodes.emplace_back();
  norm_.nodes.emplace_back();
  // Deterministic order (the tries do not depend on it, but ties on equal strings do).
  std::vector<int32_t> ids;
  for (const auto& [id, tok] : by_id_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (int32_t id : ids) {
    const AddedToken& tok = by_id_.at(id);
    if (tok.normalized) {
      auto f = normalized_form_.find(id);
      norm_.insert(f != normalized_form_.end() ? f->second : tok.content, id);
    } else {
      raw_.insert(tok.content, id);
    }
  }
}

namespace {

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t k = s.size() - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  size_t i = k;
  return is_word_char(next_cp(s, i));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return is_word_char(next_cp(s, i));
}

// Start of the whitespace run that ends `s`.
size_t trailing_space_start(std::string_view s) {
  size_t e = s.size();
  while (e > 0) {
    size_t k = e - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t i = k;
    if (!is_white_space(next_cp(s, i))) break;
    e = k;
  }
  return e;
}

// Length of the whitespace run that starts `s`.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (!is_white_space(next_cp(s, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

void AddedVocab::split(std::string_view s, bool raw, std::vector<Segment>& out) const {
  const Trie& trie = raw ? raw_ : norm_;
  if (trie.empty() || s.empty()) {
    out.push_back({-1, 0, s.size()});
    return;
  }
  size_t start_offset = 0;  // end of the last emitted segment
  size_t pos = 0;           // where the automaton resumes (end of the last match found)
  while (pos < s.size()) {
    size_t start = pos, stop = std::string_view::npos;
    int32_t id = -1;
    for (; start < s.size(); ++start) {
      if (!trie.first[static_cast<uint8_t>(s[start])]) continue;
      stop = trie.longest(s, start, id);
      if (stop != std::string_view::npos) break;
    }
    if (stop == std::string_view::npos) break;
    pos = stop;
    const AddedToken& tok = by_id_.at(id);
    if (tok.single_word) {
      bool start_space = start == 0 || !ends_with_word(s.substr(0, start));
      bool stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) start = std::max(trailing_space_start(s.substr(0, start)), start_offset);
    if (tok.rstrip) stop += leading_space_len(s.substr(stop));
    // A previous rstrip can reach past this match; the library would then slice backwards.
    if (start > stop) start = stop;
    if (start_offset < start) out.push_back({-1, start_offset, start});
    out.push_back({id, start, stop});
    start_offset = stop;
  }
  if (start_offset != s.size()) out.push_back({-1, start_offset, s.size()});
}

std::optional<int32_t> AddedVocab::id_of(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

const std::string* AddedVocab::decode_string(int32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  auto f = normalized_form_.find(id);
  return f != normalized_form_.end() ? &f->second : &it->second.content;
}

}  // namespace wick::detail::tok
