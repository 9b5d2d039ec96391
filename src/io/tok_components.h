#pragma once
// The pipeline stages of a tokenizer.json tokenizer, with the semantics of the Hugging Face
// `tokenizers` library: normalizer -> pre-tokenizer -> model -> post-processor on the way in,
// decoder on the way out. Only what token ids depend on is modelled (no offsets, no pairs).
// Every stage is immutable after loading and safe to use from several threads at once.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/json.h"
#include "io/tok_regex.h"

namespace wick::detail::tok {

/// Where a JSON value came from, for error messages: "tokenizer.json: pre_tokenizer.pretokenizers[1]".
struct Where {
  std::string file;
  std::string path;
  std::string str() const { return path.empty() ? file : file + ": " + path; }
  Where at(std::string_view key) const {
    return {file, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  Where index(size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
};

/// Text cut into pieces: each piece is the byte range [first, second) of buf.
struct Pieces {
  std::string buf;
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  /// Whether spans[0] starts at the beginning of the original input (Metaspace's "first").
  bool first_at_origin = false;
  std::string_view piece(size_t i) const {
    return std::string_view(buf).substr(spans[i].first, spans[i].second - spans[i].first);
  }
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  /// Rewrites `s` (valid UTF-8) in place.
  virtual void normalize(std::string& s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Splits (and may rewrite) every piece; empty pieces are dropped. `tmp` is scratch space.
  virtual void pre_tokenize(Pieces& p, Pieces& tmp) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  /// Appends the ids of one pre-tokenized piece (non-empty).
  virtual void tokenize(std::string_view piece, std::vector<int32_t>& out) const = 0;
  /// Appends the ids of every non-empty piece.
  virtual void tokenize_pieces(const Pieces& p, std::vector<int32_t>& out) const {
    for (size_t i = 0; i < p.spans.size(); ++i)
      if (p.spans[i].second > p.spans[i].first) tokenize(p.piece(i), out);
  }
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  /// nullptr for an id the model does not know.
  virtual const std::string* id_to_token(int32_t id) const = 0;
  /// Number of entries in the vocabulary (the library's Model::get_vocab_size).
  virtual size_t vocab_entries() const = 0;
  /// One more than the largest id in the vocabulary.
  virtual int32_t id_bound() const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  /// Adds the special tokens of a single sequence when `add_special_tokens`.
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
  /// How many tokens process() adds to a single sequence (truncation leaves room for them).
  virtual size_t added_count() const = 0;
  /// One more than the largest id it inserts (0 for none).
  virtual int32_t id_bound() const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Rewrites the list of token strings (the library's decode_chain); the result is joined.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  /// The joined result straight from the token strings, for decoders that can do it without
  /// the intermediate list; false when this decoder cannot.
  virtual bool decode_views(const std::vector<std::string_view>& tokens, std::string& out) const {
    (void)tokens;
    (void)out;
    return false;
  }
};

/// Token lookups that the post-processors need while loading.
struct VocabLookup {
  virtual ~VocabLookup() = default;
  virtual std::optional<int32_t> id_of(std::string_view token) const = 0;
};

// Factories: each takes the JSON object of one component and throws wick::Error naming
// `where` for a malformed one or an unsupported "type". A null JSON gives nullptr.
std::unique_ptr<Normalizer> make_normalizer(const io::Json& j, const Where& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const io::Json& j, const Where& where);
std::unique_ptr<Model> make_model(const io::Json& j, const Where& where);
std::unique_ptr<PostProcessor> make_post_processor(const io::Json& j, const Where& where);
std::unique_ptr<Decoder> make_decoder(const io::Json& j, const Where& where);

// JSON helpers that name `where` in their errors.
const io::Json& require_object(const io::Json& j, const Where& where);
std::string type_of(const io::Json& j, const Where& where);
std::string get_string(const io::Json& obj, std::string_view key, const Where& where);
std::optional<std::string> opt_string(const io::Json& obj, std::string_view key, const Where& where);
bool get_bool(const io::Json& obj, std::string_view key, const Where& where, bool fallback);
int64_t get_int(const io::Json& obj, std::string_view key, const Where& where, int64_t fallback);
/// One Unicode scalar value given as a one-character string (Metaspace replacement, Strip content).
char32_t get_char(const io::Json& obj, std::string_view key, const Where& where);

/// A {"String": s} or {"Regex": r} pattern (Split, Replace).
Pattern make_pattern(const io::Json& obj, std::string_view key, const Where& where);

/// The library's SplitDelimiterBehavior.
enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };
SplitBehavior parse_behavior(const io::Json& obj, std::string_view key, const Where& where);

/// Applies a behaviour to the (range, is_match) list of one piece at `base` in buf and appends
/// the non-empty resulting ranges to `out`.
void apply_behavior(SplitBehavior b, const std::vector<std::pair<size_t, size_t>>& ranges,
                    const std::vector<bool>& is_match, uint32_t base,
                    std::vector<std::pair<uint32_t, uint32_t>>& out);

}  // namespace wick::detail::tok
