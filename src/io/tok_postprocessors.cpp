// Post-processors (single sequence): TemplateProcessing, BertProcessing, RobertaProcessing,
// ByteLevel (nothing to do for ids) and Sequence.
#include <algorithm>
#include <map>

#include "io/tok_components.h"
#include "io/tok_vocab.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

int32_t checked_id(const io::Json& v, const Where& where) {
  if (!v.is_number_integer() && !v.is_number_unsigned())
    throw Error(where.str() + ": expected an integer id, got " + io::json_type_name(v));
  if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(kMaxTokenId)
                             : (v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxTokenId))
    throw Error(where.str() + ": id " + v.dump() + " is out of range");
  return static_cast<int32_t>(v.get<int64_t>());
}

// A template item: the sequence itself (-1) or a list of special-token ids.
class Template final : public PostProcessor {
 public:
  // Each element: the ids to insert, or nullopt for the sequence.
  explicit Template(std::vector<std::optional<std::vector<int32_t>>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) {
      // Only the sequence items remain (a template may repeat the sequence).
      size_t copies = 0;
      for (const auto& it : items_) copies += !it.has_value();
      if (copies == 1) return;
      std::vector<int32_t> out;
      for (size_t c = 0; c < copies; ++c) out.insert(out.end(), ids.begin(), ids.end());
      ids.swap(out);
      return;
    }
    std::vector<int32_t> out;
    out.reserve(ids.size() + 8);
    for (const auto& it : items_) {
      if (it)
        out.insert(out.end(), it->begin(), it->end());
      else
        out.insert(out.end(), ids.begin(), ids.end());
    }
    ids.swap(out);
  }
  size_t added_count() const override {
    size_t n = 0;
    for (const auto& it : items_) n += it ? it->size() : 0;
    return n;
  }
  int32_t id_bound() const override {
    int32_t b = 0;
    for (const auto& it : items_)
      if (it)
        for (int32_t id : *it) b = std::max(b, id + 1);
    return b;
  }

 private:
  std::vector<std::optional<std::vector<int32_t>>> items_;
};

class Noop final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
  size_t added_count() const override { return 0; }
  int32_t id_bound() const override { return 0; }
};

class SequencePost final : public PostProcessor {
 public:
  explicit SequencePost(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids, bool add) const override {
    for (const auto& p : items_) p->process(ids, add);
  }
  size_t added_count() const override {
    size_t n = 0;
    for (const auto& p : items_) n += p->added_count();
    return n;
  }
  int32_t id_bound() const override {
    int32_t b = 0;
    for (const auto& p : items_) b = std::max(b, p->id_bound());
    return b;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

std::unique_ptr<PostProcessor> make_template(const io::Json& j, const Where& where) {
  auto st = j.find("special_tokens");
  std::map<std::string, std::vector<int32_t>> specials;
  Where ws = where.at("special_tokens");
  if (st != j.end() && !st->is_null()) {
    if (!st->is_object()) throw Error(ws.str() + ": expected an object");
    for (auto it = st->begin(); it != st->end(); ++it) {
      Where w = ws.at(it.key());
      require_object(it.value(), w);
      auto ids = it.value().find("ids");
      if (ids == it.value().end() || !ids->is_array())
        throw Error(w.str() + ": ids: expected an array");
      std::vector<int32_t> v;
      for (size_t k = 0; k < ids->size(); ++k) v.push_back(checked_id((*ids)[k], w.at("ids").index(k)));
      // The map is keyed by each entry's own "id" field.
      std::string key = opt_string(it.value(), "id", w).value_or(it.key());
      specials[key] = std::move(v);
    }
  }
  auto single = j.find("single");
  Where wsingle = where.at("single");
  if (single == j.end() || !single->is_array()) throw Error(wsingle.str() + ": expected an array");
  std::vector<std::optional<std::vector<int32_t>>> items;
  for (size_t i = 0; i < single->size(); ++i) {
    const io::Json& piece = (*single)[i];
    Where w = wsingle.index(i);
    if (!piece.is_object() || piece.size() != 1)
      throw Error(w.str() + ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    auto kv = piece.begin();
    Where wk = w.at(kv.key());
    require_object(kv.value(), wk);
    std::string id = get_string(kv.value(), "id", wk);
    if (kv.key() == "Sequence") {
      // A single sequence is A; B would index a second sequence that does not exist.
      if (id != "A") throw Error(wk.str() + ": the single template can only use sequence A, got \"" + id + "\"");
      items.emplace_back(std::nullopt);
    } else if (kv.key() == "SpecialToken") {
      auto f = specials.find(id);
      if (f == specials.end())
        throw Error(wk.str() + ": special token \"" + id + "\" is missing from special_tokens");
      items.emplace_back(f->second);
    } else {
      throw Error(w.str() + ": unknown template piece \"" + kv.key() + "\"");
    }
  }
  return std::make_unique<Template>(std::move(items));
}

// cls and sep given as ["token", id].
std::vector<int32_t> token_pair_id(const io::Json& j, std::string_view key, const Where& where) {
  Where w = where.at(key);
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[0].is_string())
    throw Error(w.str() + ": expected [\"token\", id]");
  return {checked_id((*it)[1], w.index(1))};
}

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const io::Json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  std::string type = type_of(j, where);
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    std::vector<std::optional<std::vector<int32_t>>> items;
    items.emplace_back(token_pair_id(j, "cls", where));
    items.emplace_back(std::nullopt);
    items.emplace_back(token_pair_id(j, "sep", where));
    return std::make_unique<Template>(std::move(items));
  }
  if (type == "ByteLevel") return std::make_unique<Noop>();
  if (type == "Sequence") {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array()) throw Error(where.str() + ": processors: expected an array");
    std::vector<std::unique_ptr<PostProcessor>> items;
    Where w = where.at("processors");
    for (size_t i = 0; i < it->size(); ++i) {
      auto p = make_post_processor((*it)[i], w.index(i));
      if (!p) throw Error(w.index(i).str() + ": expected a post-processor, got null");
      items.push_back(std::move(p));
    }
    return std::make_unique<SequencePost>(std::move(items));
  }
  throw Error(where.str() + ": unsupported post-processor type \"" + type + "\"");
}

}  // namespace wick::detail::tok
