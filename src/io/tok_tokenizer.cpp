// Loading a tokenizer.json and running the encode / decode pipelines.
#include "io/tok_tokenizer.h"

#include <algorithm>
#include <limits>

#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail {

using tok::Where;

namespace {

// Per-thread buffers of the encode pipeline (the tokenizer itself is shared and const).
struct EncodeScratch {
  std::vector<tok::Segment> raw, sub;
  std::string normalized;
  tok::Pieces pieces, tmp;
  std::vector<int32_t> ids;
};
EncodeScratch& encode_scratch() {
  thread_local EncodeScratch s;
  return s;
}

}  // namespace

void TokenizerImpl::load(std::string_view json, std::string_view config_json) {
  io::Json j = io::parse_json(json, source);
  Where root{source, ""};
  tok::require_object(j, root);
  if (auto v = j.find("version"); v != j.end() && !v->is_null()) {
    if (!v->is_string() || v->get<std::string>() != "1.0")
      throw Error(source + ": version: unknown tokenizer version " + v->dump());
  }
  auto field = [&](const char* key) -> const io::Json& {
    static const io::Json null_json;
    auto it = j.find(key);
    return it == j.end() ? null_json : *it;
  };
  normalizer = tok::make_normalizer(field("normalizer"), root.at("normalizer"));
  pre_tokenizer = tok::make_pre_tokenizer(field("pre_tokenizer"), root.at("pre_tokenizer"));
  model = tok::make_model(field("model"), root.at("model"));
  post_processor = tok::make_post_processor(field("post_processor"), root.at("post_processor"));
  decoder = tok::make_decoder(field("decoder"), root.at("decoder"));
  added.load(field("added_tokens"), root.at("added_tokens"), *model, normalizer.get());

  const io::Json& trunc = field("truncation");
  if (!trunc.is_null()) {
    Where w = root.at("truncation");
    tok::require_object(trunc, w);
    Truncation t;
    int64_t max_len = tok::get_int(trunc, "max_length", w, -1);
    if (max_len < 0) throw Error(w.str() + ": max_length: expected a non-negative integer");
    int64_t stride = tok::get_int(trunc, "stride", w, 0);
    if (stride < 0) throw Error(w.str() + ": stride: expected a non-negative integer");
    t.max_length = static_cast<size_t>(max_len);
    t.stride = static_cast<size_t>(stride);
    std::string dir = tok::opt_string(trunc, "direction", w).value_or("Right");
    if (dir != "Right" && dir != "Left") throw Error(w.str() + ": direction: unknown value \"" + dir + "\"");
    t.left = dir == "Left";
    std::string strategy = tok::opt_string(trunc, "strategy", w).value_or("LongestFirst");
    if (strategy != "LongestFirst" && strategy != "OnlyFirst" && strategy != "OnlySecond")
      throw Error(w.str() + ": strategy: unknown value \"" + strategy + "\"");
    t.only_second = strategy == "OnlySecond";
    truncation = t;
  }
  // "padding" is not applied: wick never pads a single encoding.

  vocab_size = std::max(model->id_bound(), added.id_bound());
  if (post_processor) vocab_size = std::max(vocab_size, post_processor->id_bound());
  int32_t bound = std::max(model->id_bound(), added.id_bound());
  id_text.assign(static_cast<size_t>(bound), std::string_view());
  id_known.assign(static_cast<size_t>(bound), 0);
  id_special.assign(static_cast<size_t>(bound), 0);
  for (int32_t id = 0; id < bound; ++id) {
    const std::string* t = added.decode_string(id);
    if (!t) t = model->id_to_token(id);
    if (!t) continue;
    id_text[id] = *t;
    id_known[id] = 1;
    id_special[id] = added.is_special_string(*t);
  }
  if (!config_json.empty()) load_config(config_json);
}

void TokenizerImpl::load_config(std::string_view config_json) {
  std::string name = source + " (tokenizer_config.json)";
  io::Json c = io::parse_json(config_json, name);
  Where root{name, ""};
  tok::require_object(c, root);
  // A special token is a string or an AddedToken object {"content": ...}.
  auto token = [&](const char* key) -> std::string {
    auto it = c.find(key);
    if (it == c.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) return tok::get_string(*it, "content", root.at(key));
    throw Error(name + ": " + key + ": expected a string or an object, got " + io::json_type_name(*it));
  };
  bos = token("bos_token");
  eos = token("eos_token");
  pad = token("pad_token");
  unk = token("unk_token");
  add_bos = io::json_optional<bool>(c, "add_bos_token", name);
  add_eos = io::json_optional<bool>(c, "add_eos_token", name);
  if (auto it = c.find("chat_template"); it != c.end() && !it->is_null()) {
    if (it->is_string()) {
      chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      Where w = root.at("chat_template");
      for (size_t i = 0; i < it->size(); ++i) {
        const io::Json& t = tok::require_object((*it)[i], w.index(i));
        std::string n = tok::get_string(t, "name", w.index(i));
        std::string body = tok::get_string(t, "template", w.index(i));
        if (i == 0 || n == "default") chat_template = body;
        if (n == "default") break;
      }
    } else {
      throw Error(name + ": chat_template: expected a string or a list, got " + io::json_type_name(*it));
    }
  }
}

std::optional<int32_t> TokenizerImpl::token_to_id(std::string_view token) const {
  if (auto id = added.id_of(token)) return id;
  return model->token_to_id(token);
}

void TokenizerImpl::encode_text(std::string_view text, bool at_origin, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  EncodeScratch& sc = encode_scratch();
  tok::Pieces& p = sc.pieces;
  p.buf.assign(text);
  p.spans.assign(1, {0u, static_cast<uint32_t>(text.size())});
  p.first_at_origin = at_origin;
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(p, sc.tmp);
  model->tokenize_pieces(p, out);
}

template <class OnId, class OnText>
void TokenizerImpl::for_each_segment(std::string_view text, OnId&& on_id, OnText&& on_text) const {
  EncodeScratch& sc = encode_scratch();
  // Segments hold offsets into `text` or into the normalized copy, so they are consumed
  // before the next piece reuses the buffers.
  std::vector<tok::Segment> raw;
  raw.swap(sc.raw);
  raw.clear();
  added.split(text, true, raw);
  for (const tok::Segment& seg : raw) {
    if (seg.id >= 0) {
      on_id(seg.id);
      continue;
    }
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    bool origin = seg.begin == 0;
    std::string& normalized = sc.normalized;
    if (normalizer) {
      normalized.assign(piece);
      normalizer->normalize(normalized);
      piece = normalized;
    }
    if (!added.has_normalized()) {
      on_text(piece, origin);
      continue;
    }
    std::vector<tok::Segment>& sub = sc.sub;
    sub.clear();
    added.split(piece, false, sub);
    for (const tok::Segment& s : sub) {
      if (s.id >= 0)
        on_id(s.id);
      else
        on_text(piece.substr(s.begin, s.end - s.begin), origin && s.begin == 0);
    }
  }
  raw.swap(sc.raw);
}

void TokenizerImpl::pre_tokenize(std::string_view text,
                                 const std::function<void(std::string_view)>& fn) const {
  if (size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos)
    throw Error(source + ": pre_tokenize: the text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  if (text.size() > std::numeric_limits<uint32_t>::max() / 4)
    throw Error(source + ": pre_tokenize: the text is too long (" + std::to_string(text.size()) + " bytes)");
  // The pieces live in their own buffers: encode_text's scratch may be in use by the caller.
  tok::Pieces p, tmp;
  for_each_segment(
      text, [](int32_t) {},
      [&](std::string_view piece, bool origin) {
        if (piece.empty()) return;
        p.buf.assign(piece);
        p.spans.assign(1, {0u, static_cast<uint32_t>(piece.size())});
        p.first_at_origin = origin;
        if (pre_tokenizer) pre_tokenizer->pre_tokenize(p, tmp);
        for (size_t i = 0; i < p.spans.size(); ++i)
          if (p.spans[i].second > p.spans[i].first) fn(p.piece(i));
      });
}

void TokenizerImpl::encode(std::string_view text, bool add_special_tokens,
                           std::vector<int32_t>& out) const {
  if (size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos)
    throw Error(source + ": encode: the text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  if (text.size() > std::numeric_limits<uint32_t>::max() / 4)
    throw Error(source + ": encode: the text is too long (" + std::to_string(text.size()) + " bytes)");
  EncodeScratch& sc = encode_scratch();
  std::vector<int32_t> ids;
  ids.swap(sc.ids);
  ids.clear();
  for_each_segment(
      text, [&](int32_t id) { ids.push_back(id); },
      [&](std::string_view piece, bool origin) { encode_text(piece, origin, ids); });

  if (truncation) {
    size_t max_len = truncation->max_length;
    size_t n_added = add_special_tokens && post_processor ? post_processor->added_count() : 0;
    max_len = max_len > n_added ? max_len - n_added : 0;
    if (max_len == 0) {
      ids.clear();
    } else if (ids.size() > max_len) {
      if (truncation->only_second)
        throw Error(source + ": truncation strategy OnlySecond needs a second sequence");
      if (truncation->stride >= max_len)
        throw Error(source + ": truncation stride " + std::to_string(truncation->stride) +
                    " is not below the effective max length " + std::to_string(max_len));
      if (truncation->left)
        ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(max_len));
      else
        ids.resize(max_len);
    }
  }
  if (post_processor) post_processor->process(ids, add_special_tokens);
  out.insert(out.end(), ids.begin(), ids.end());
  ids.swap(sc.ids);
}

std::string TokenizerImpl::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string_view> views;
  views.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string_view* t = text_of(id);
    if (!t) continue;  // unknown ids are dropped, as the library does
    if (skip_special_tokens && id_special[id]) continue;
    views.push_back(*t);
  }
  std::string fast;
  if (decoder && decoder->decode_views(views, fast)) return fast;
  std::vector<std::string> tokens(views.begin(), views.end());
  if (decoder) {
    decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += ' ';
    out += tokens[i];
  }
  return out;
}

}  // namespace wick::detail
