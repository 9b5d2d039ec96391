// WordPiece and WordLevel models, and the model factory.
#include "io/tok_bpe.h"
#include "io/tok_components.h"
#include "io/tok_unicode.h"
#include "io/tok_vocab.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

class VocabModel : public Model {
 public:
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    int32_t id = vocab_.find(token);
    return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
  }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  size_t vocab_entries() const override { return vocab_.size(); }
  int32_t id_bound() const override { return vocab_.id_bound(); }

 protected:
  VocabModel(const io::Json& j, const Where& where, const char* default_unk) : where_(where.str()) {
    if (!j.contains("vocab")) throw Error(where.str() + ": missing field \"vocab\"");
    vocab_.load(j["vocab"], where.at("vocab"));
    unk_ = opt_string(j, "unk_token", where).value_or(default_unk);
  }
  int32_t unk_id() const {
    int32_t id = vocab_.find(unk_);
    if (id < 0)
      throw Error(where_ + ": unk_token \"" + unk_ + "\" is not in the vocabulary, and the text needs it");
    return id;
  }
  std::string where_;
  Vocab vocab_;
  std::string unk_;
};

// Greedy longest-match-first subwords; a word that cannot be covered (or is longer than
// max_input_chars_per_word characters) becomes one unk token.
class WordPiece final : public VocabModel {
 public:
  WordPiece(const io::Json& j, const Where& where) : VocabModel(j, where, "[UNK]") {
    prefix_ = opt_string(j, "continuing_subword_prefix", where).value_or("##");
    int64_t m = get_int(j, "max_input_chars_per_word", where, 100);
    if (m < 0) throw Error(where.str() + ": max_input_chars_per_word must not be negative");
    max_chars_ = static_cast<size_t>(m);
  }

  void tokenize(std::string_view w, std::vector<int32_t>& out) const override {
    size_t chars = 0;
    for (size_t i = 0; i < w.size(); i += utf8_len(static_cast<unsigned char>(w[i]))) ++chars;
    if (chars > max_chars_) {
      out.push_back(unk_id());
      return;
    }
    size_t before = out.size();
    std::string key;
    size_t start = 0;
    while (start < w.size()) {
      size_t end = w.size();
      int32_t found = -1;
      while (start < end) {
        key.clear();
        if (start > 0) key += prefix_;
        key.append(w.substr(start, end - start));
        found = vocab_.find(key);
        if (found >= 0) break;
        // Drop the last character.
        size_t k = end - 1;
        while (k > start && (static_cast<unsigned char>(w[k]) & 0xC0) == 0x80) --k;
        end = k;
      }
      if (found < 0) {
        out.resize(before);
        out.push_back(unk_id());
        return;
      }
      out.push_back(found);
      start = end;
    }
  }

 private:
  std::string prefix_;
  size_t max_chars_ = 100;
};

class WordLevel final : public VocabModel {
 public:
  WordLevel(const io::Json& j, const Where& where) : VocabModel(j, where, "<unk>") {}
  void tokenize(std::string_view w, std::vector<int32_t>& out) const override {
    int32_t id = vocab_.find(w);
    out.push_back(id >= 0 ? id : unk_id());
  }
};

}  // namespace

std::unique_ptr<Model> make_model(const io::Json& j, const Where& where) {
  if (j.is_null()) throw Error(where.str() + ": a model is required");
  require_object(j, where);
  // Old files may omit the type; the library then tries each model in turn. wick recognises
  // the BPE (merges) and WordPiece shapes.
  std::string type;
  if (j.contains("type")) {
    type = type_of(j, where);
  } else if (j.contains("merges")) {
    type = "BPE";
  } else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    throw Error(where.str() + ": missing field \"type\"");
  }
  if (type == "BPE") return std::make_unique<Bpe>(j, where);
  if (type == "WordPiece") return std::make_unique<WordPiece>(j, where);
  if (type == "WordLevel") return std::make_unique<WordLevel>(j, where);
  throw Error(where.str() + ": unsupported model type \"" + type + "\"");
}

}  // namespace wick::detail::tok
