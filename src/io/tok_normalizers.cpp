// Normalizers: NFC/NFD/NFKC/NFKD, Lowercase, BertNormalizer, Strip, StripAccents, Replace,
// Prepend, ByteLevel and Sequence, as the tokenizers library defines them.
#include "io/tok_bytelevel.h"
#include "io/tok_components.h"
#include "io/tok_regex.h"
#include "io/tok_unicode.h"
#include "wick/error.h"

namespace wick::detail::tok {

namespace {

bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

class UnicodeNorm final : public Normalizer {
 public:
  explicit UnicodeNorm(NormForm f) : form_(f) {}
  void normalize(std::string& s) const override {
    if (is_ascii(s)) return;
    s = tok::normalize(s, form_);
  }

 private:
  NormForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = lowercase(s); }
};

class BertNorm final : public Normalizer {
 public:
  BertNorm(bool clean, bool chinese, bool strip_accents, bool lower)
      : clean_(clean), chinese_(chinese), strip_(strip_accents), lower_(lower) {}

  void normalize(std::string& s) const override {
    if (clean_ || chinese_) {
      std::string out;
      out.reserve(s.size() + s.size() / 4);
      for (size_t i = 0; i < s.size();) {
        char32_t c = next_cp(s, i);
        if (clean_) {
          // Controls go first, so a control that is also White_Space (U+000B, U+000C, U+0085)
          // is dropped rather than turned into a space; \t \n \r are not controls here.
          bool tab_nl = c == '\t' || c == '\n' || c == '\r';
          if (c == 0 || c == 0xFFFD || (!tab_nl && is_other(c))) continue;
          if (tab_nl || is_white_space(c)) {
            out.push_back(' ');
            continue;
          }
        }
        if (chinese_ && is_chinese_char(c)) {
          out.push_back(' ');
          append_utf8(out, c);
          out.push_back(' ');
        } else {
          append_utf8(out, c);
        }
      }
      s.swap(out);
    }
    if (strip_) {
      std::string d = tok::normalize(s, NormForm::nfd);
      std::string out;
      out.reserve(d.size());
      for (size_t i = 0; i < d.size();) {
        size_t at = i;
        char32_t c = next_cp(d, i);
        if (!is_mark_nonspacing(c)) out.append(d, at, i - at);
      }
      s.swap(out);
    }
    if (lower_) s = lowercase(s);
  }

 private:
  bool clean_, chinese_, strip_, lower_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    size_t b = 0, e = s.size();
    if (left_) {
      while (b < e) {
        size_t j = b;
        if (!is_white_space(next_cp(s, j))) break;
        b = j;
      }
    }
    if (right_) {
      while (e > b) {
        size_t k = e - 1;
        while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t j = k;
        if (!is_white_space(next_cp(s, j))) break;
        e = k;
      }
    }
    s = s.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class StripAccents final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      size_t at = i;
      char32_t c = next_cp(s, i);
      // General category M (Mn, Mc, Me): unicode-normalization's is_combining_mark.
      if (c < 0x300 || !is_combining(c)) out.append(s, at, i - at);
    }
    s.swap(out);
  }

 private:
  static bool is_combining(char32_t c);
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::string out;
    size_t prev = 0;
    bool any = false;
    pattern_.for_each_match(s, [&](size_t b, size_t e) {
      if (!any) out.reserve(s.size() + content_.size());
      any = true;
      out.append(s, prev, b - prev);
      out += content_;
      prev = e;
    });
    if (!any) return;
    out.append(s, prev, std::string::npos);
    s.swap(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prepend_(std::move(p)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ByteLevelNorm final : public Normalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    byte_level_encode(s, out);
    s.swap(out);
  }
};

class SequenceNorm final : public Normalizer {
 public:
  explicit SequenceNorm(std::vector<std::unique_ptr<Normalizer>> n) : items_(std::move(n)) {}
  void normalize(std::string& s) const override {
    for (const auto& n : items_) n->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

}  // namespace wick::detail::tok

#include <utf8proc.h>

namespace wick::detail::tok {
namespace {
bool StripAccents::is_combining(char32_t c) {
  auto k = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}
}  // namespace

Pattern make_pattern(const io::Json& obj, std::string_view key, const Where& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    throw Error(where.str() + ": missing field \"" + std::string(key) + "\"");
  Where w = where.at(key);
  if (!it->is_object() || it->size() != 1)
    throw Error(w.str() + ": expected {\"String\": ...} or {\"Regex\": ...}");
  auto kv = it->begin();
  if (!kv.value().is_string())
    throw Error(w.str() + "." + kv.key() + ": expected a string, got " +
                io::json_type_name(kv.value()));
  std::string text = kv.value().get<std::string>();
  if (kv.key() == "String") return Pattern::literal(text, w.str());
  if (kv.key() == "Regex") return Pattern::regex(text, w.str());
  throw Error(w.str() + ": unknown pattern kind \"" + kv.key() + "\"");
}

std::unique_ptr<Normalizer> make_normalizer(const io::Json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  std::string type = type_of(j, where);
  if (type == "NFC") return std::make_unique<UnicodeNorm>(NormForm::nfc);
  if (type == "NFD") return std::make_unique<UnicodeNorm>(NormForm::nfd);
  if (type == "NFKC") return std::make_unique<UnicodeNorm>(NormForm::nfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNorm>(NormForm::nfkd);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNorm>();
  if (type == "BertNormalizer") {
    bool lower = get_bool(j, "lowercase", where, true);
    // strip_accents: null means "same as lowercase".
    bool strip = io::json_optional<bool>(j, "strip_accents", where.str()).value_or(lower);
    return std::make_unique<BertNorm>(get_bool(j, "clean_text", where, true),
                                      get_bool(j, "handle_chinese_chars", where, true), strip,
                                      lower);
  }
  if (type == "Strip")
    return std::make_unique<Strip>(get_bool(j, "strip_left", where, true),
                                   get_bool(j, "strip_right", where, true));
  if (type == "Replace")
    return std::make_unique<Replace>(make_pattern(j, "pattern", where),
                                     get_string(j, "content", where));
  if (type == "Prepend") return std::make_unique<Prepend>(get_string(j, "prepend", where));
  if (type == "Sequence") {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array())
      throw Error(where.str() + ": normalizers: expected an array");
    std::vector<std::unique_ptr<Normalizer>> items;
    Where w = where.at("normalizers");
    for (size_t i = 0; i < it->size(); ++i) {
      auto n = make_normalizer((*it)[i], w.index(i));
      if (!n) throw Error(w.index(i).str() + ": expected a normalizer, got null");
      items.push_back(std::move(n));
    }
    return std::make_unique<SequenceNorm>(std::move(items));
  }
  throw Error(where.str() + ": unsupported normalizer type \"" + type + "\"");
}

}  // namespace wick::detail::tok
