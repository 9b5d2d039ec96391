// Embedder::load: the encoder, its tokenizer (tokenizer.json, or a WordPiece vocab.txt turned into
// the tokenizer.json that transformers' BertTokenizerFast would make of it), and the defaults a
// sentence-transformers folder declares.
#include <algorithm>

#include "io/files.h"
#include "io/json.h"
#include "wick/embed.h"

namespace wick {

namespace {

using io::Json;

constexpr size_t kMaxSmallFile = size_t{16} << 20;
constexpr size_t kMaxVocabFile = size_t{256} << 20;

/// tokenizer_config.json of `dir` as an object (empty when absent).
Json tokenizer_config(const std::string& dir, std::string& text) {
  std::string path = io::join_path(dir, "tokenizer_config.json");
  if (!io::is_file(path)) return Json::object();
  text = io::read_file(path, kMaxSmallFile);
  Json j = io::parse_json(text, path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object, got " + io::json_type_name(j));
  return j;
}

/// BertTokenizerFast's tokenizer for a vocab.txt (one token per line, id = line number):
/// BertNormalizer, BertPreTokenizer, WordPiece and "[CLS] $A [SEP]".
Tokenizer wordpiece_from_vocab(const std::string& dir) {
  std::string vocab_path = io::join_path(dir, "vocab.txt");
  std::string config_text;
  Json cfg = tokenizer_config(dir, config_text);
  std::string cfg_path = io::join_path(dir, "tokenizer_config.json");
  auto str = [&](const char* key, const char* dflt) {
    return io::json_optional<std::string>(cfg, key, cfg_path).value_or(dflt);
  };
  std::string text = io::read_file(vocab_path, kMaxVocabFile);
  Json vocab = Json::object();
  int64_t id = 0;
  for (size_t pos = 0; pos < text.size(); ++id) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string token = text.substr(pos, end - pos);
    if (!token.empty() && token.back() == '\r') token.pop_back();
    vocab[token] = id;  // a repeated token keeps its last line, as transformers' load_vocab
    pos = end + 1;
  }
  if (vocab.empty()) throw Error(vocab_path + ": empty vocabulary");
  Json added = Json::array();
  auto special = [&](const char* key, const char* dflt) {
    std::string token = str(key, dflt);
    auto it = vocab.find(token);
    if (it == vocab.end()) throw Error(vocab_path + ": the " + key + " \"" + token + "\" is not in the vocabulary");
    added.push_back({{"id", *it}, {"content", token}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
    return std::make_pair(token, it->get<int64_t>());
  };
  special("pad_token", "[PAD]");
  std::string unk = special("unk_token", "[UNK]").first;
  auto [cls, cls_id] = special("cls_token", "[CLS]");
  auto [sep, sep_id] = special("sep_token", "[SEP]");
  if (vocab.contains(str("mask_token", "[MASK]"))) special("mask_token", "[MASK]");
  std::sort(added.begin(), added.end(), [](const Json& a, const Json& b) { return a["id"] < b["id"]; });

  Json strip = nullptr;
  if (auto s = io::json_optional<bool>(cfg, "strip_accents", cfg_path)) strip = *s;
  Json tok = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "BertNormalizer"},
        {"clean_text", true},
        {"handle_chinese_chars", io::json_optional<bool>(cfg, "tokenize_chinese_chars", cfg_path).value_or(true)},
        {"strip_accents", strip},
        {"lowercase", io::json_optional<bool>(cfg, "do_lower_case", cfg_path).value_or(true)}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", Json::array({{{"SpecialToken", {{"id", cls}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                {{"SpecialToken", {{"id", sep}, {"type_id", 0}}}}})},
        {"pair", Json::array({{{"SpecialToken", {{"id", cls}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", sep}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}},
                              {{"SpecialToken", {{"id", sep}, {"type_id", 1}}}}})},
        {"special_tokens",
         {{cls, {{"id", cls}, {"ids", {cls_id}}, {"tokens", {cls}}}},
          {sep, {{"id", sep}, {"ids", {sep_id}}, {"tokens", {sep}}}}}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"model",
       {{"type", "WordPiece"},
        {"unk_token", unk},
        {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", 100},
        {"vocab", vocab}}}};
  return Tokenizer::from_json(tok.dump(), vocab_path, config_text);
}

/// A small JSON file of a sentence-transformers folder as an object, or null when absent.
Json optional_json(const std::string& path) {
  if (!io::is_file(path)) return nullptr;
  Json j = io::parse_json(io::read_file(path, kMaxSmallFile), path);
  if (!j.is_object() && !j.is_array()) throw Error(path + ": expected a JSON object or array");
  return j;
}

/// Pooling, normalisation and max_seq_length from modules.json, the pooling module's config and
/// sentence_bert_config.json.
void sentence_transformers_defaults(const std::string& dir, EmbedOptions& o) {
  std::string modules_path = io::join_path(dir, "modules.json");
  std::string pooling_dir = "1_Pooling";
  Json modules = optional_json(modules_path);
  if (modules.is_array()) {
    for (const Json& m : modules) {
      if (!m.is_object()) throw Error(modules_path + ": expected a list of objects");
      std::string type = io::json_optional<std::string>(m, "type", modules_path).value_or("");
      if (type.ends_with(".Normalize")) o.normalize = true;
      if (type.ends_with(".Pooling")) pooling_dir = io::json_optional<std::string>(m, "path", modules_path).value_or("");
    }
  } else if (!modules.is_null()) {
    throw Error(modules_path + ": expected a JSON list of modules");
  }
  if (pooling_dir.find("..") != std::string::npos) throw Error(modules_path + ": pooling path leaves the folder");
  std::string pooling_path = io::join_path(io::join_path(dir, pooling_dir), "config.json");
  Json pooling = pooling_dir.empty() ? Json(nullptr) : optional_json(pooling_path);
  if (pooling.is_object()) {
    std::vector<Pooling> modes;
    for (const auto& [key, mode] : {std::pair{"pooling_mode_mean_tokens", Pooling::mean},
                                    std::pair{"pooling_mode_cls_token", Pooling::cls},
                                    std::pair{"pooling_mode_max_tokens", Pooling::max}})
      if (io::json_optional<bool>(pooling, key, pooling_path).value_or(false)) modes.push_back(mode);
    for (const char* key : {"pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                            "pooling_mode_lasttoken"})
      if (io::json_optional<bool>(pooling, key, pooling_path).value_or(false))
        throw Error(pooling_path + ": " + key + ": unsupported pooling mode (supported: mean, cls, max)");
    if (modes.size() > 1)
      throw Error(pooling_path + ": several pooling modes at once (concatenated vectors) are not supported");
    if (modes.size() == 1) o.pooling = modes[0];
  }
  std::string sbert_path = io::join_path(dir, "sentence_bert_config.json");
  Json sbert = optional_json(sbert_path);
  if (sbert.is_object()) {
    if (auto n = io::json_optional<int64_t>(sbert, "max_seq_length", sbert_path)) {
      if (*n <= 0) throw Error(sbert_path + ": max_seq_length: must be positive, got " + std::to_string(*n));
      o.max_length = *n;
    }
  }
}

}  // namespace

Embedder Embedder::load(const std::string& dir, DType dtype) {
  if (!io::is_directory(dir)) throw Error(dir + ": not a folder");
  auto model = BertModel::load(dir, dtype);
  std::optional<Tokenizer> tokenizer;
  if (io::is_file(io::join_path(dir, "tokenizer.json"))) {
    tokenizer = Tokenizer::load(dir);
  } else if (io::is_file(io::join_path(dir, "vocab.txt"))) {
    tokenizer = wordpiece_from_vocab(dir);
  } else {
    throw Error(dir + ": no tokenizer.json or vocab.txt");
  }
  Embedder e(std::move(model), *tokenizer);
  sentence_transformers_defaults(dir, e.defaults_);
  e.defaults_.max_length = std::min(e.defaults_.max_length, e.model_->config().max_tokens());
  return e;
}

}  // namespace wick
