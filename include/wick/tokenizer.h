#pragma once
// Hugging Face `tokenizer.json` tokenizers, with the token ids and decoded text of the Rust
// `tokenizers` library (Tokenizer.encode / Tokenizer.decode): byte-level BPE (GPT-2, Qwen,
// Llama 3), SentencePiece-style BPE with byte fallback (Gemma), WordPiece (BERT) and WordLevel;
// added and special tokens; the common normalizers, pre-tokenizers, post-processors and
// decoders. Files are untrusted: anything malformed or unsupported is a wick::Error naming the
// file and the field.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wick {

namespace detail {
struct TokenizerImpl;
}

class StreamDecoder;

/// An immutable tokenizer. Copies share the loaded data; every const method may be called
/// from several threads at once.
class Tokenizer {
 public:
  /// Loads `path`: a tokenizer.json file, or a model folder that contains one. A
  /// tokenizer_config.json beside it, when present, supplies the bos/eos/pad/unk token names
  /// and the chat template.
  static Tokenizer load(const std::string& path);

  /// Builds a tokenizer from the text of a tokenizer.json (and optionally of a
  /// tokenizer_config.json); `source_name` names the data in error messages.
  static Tokenizer from_json(std::string_view tokenizer_json, const std::string& source_name,
                             std::string_view tokenizer_config_json = {});

  /// Token ids of `text` (valid UTF-8, else wick::Error). `add_special_tokens` applies the
  /// post-processor (e.g. a BOS token or [CLS] ... [SEP]).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  /// encode() of every text, spread over `threads` threads (0: one per hardware thread).
  /// Results are identical to calling encode() on each text.
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> texts,
                                                 bool add_special_tokens = true,
                                                 int threads = 0) const;
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string_view> texts,
                                                 bool add_special_tokens = true,
                                                 int threads = 0) const;

  /// Text of `ids`. Unknown ids are skipped (as the library does); `skip_special_tokens`
  /// also drops special tokens. Invalid byte sequences come out as U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  /// An incremental decoder for streaming generation (see StreamDecoder).
  StreamDecoder stream_decoder(bool skip_special_tokens = false) const;

  /// Id of a token string (added tokens first, then the model's vocabulary).
  std::optional<int32_t> token_to_id(std::string_view token) const;
  /// Token string of an id, or nullopt for an unknown id.
  std::optional<std::string> id_to_token(int32_t id) const;
  /// One more than the largest id the tokenizer can produce or decode.
  int32_t vocab_size() const;
  /// Whether `id` is a special added token (skipped by decode(..., true)).
  bool is_special(int32_t id) const;

  /// Special tokens named by tokenizer_config.json (bos/eos/pad/unk), when present and known.
  std::optional<int32_t> bos_token_id() const;
  std::optional<int32_t> eos_token_id() const;
  std::optional<int32_t> pad_token_id() const;
  std::optional<int32_t> unk_token_id() const;
  /// Their token strings ("" when not configured).
  const std::string& bos_token() const;
  const std::string& eos_token() const;
  const std::string& pad_token() const;
  const std::string& unk_token() const;
  /// tokenizer_config.json's add_bos_token / add_eos_token, when present. The ids that
  /// encode() returns follow tokenizer.json's post-processor, as the tokenizers library does.
  std::optional<bool> add_bos_token() const;
  std::optional<bool> add_eos_token() const;
  /// The Jinja chat template of tokenizer_config.json ("" when absent; when the file holds a
  /// list of named templates, the one named "default", else the first).
  const std::string& chat_template() const;
  /// The file (or source name) the tokenizer came from.
  const std::string& source() const;

 private:
  explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl);
  std::shared_ptr<const detail::TokenizerImpl> impl_;
  friend class StreamDecoder;
};

/// Turns a stream of token ids into text as it is generated, the way the tokenizers
/// library's DecodeStream does: push() returns the text that the new id completes (possibly
/// empty), never a partial UTF-8 character or text that a later id could still change at the
/// start. flush() returns what is left (with U+FFFD for bytes that never completed).
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  /// Adds one id; returns the newly completed text.
  std::string push(int32_t id);
  /// Returns any text still held back and resets the decoder.
  std::string flush();

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
};

}  // namespace wick
