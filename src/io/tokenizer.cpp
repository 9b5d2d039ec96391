// wick::Tokenizer: the public face of the tokenizer.json pipeline (io/tok_*).
#include "wick/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "io/files.h"
#include "io/tok_tokenizer.h"
#include "wick/error.h"

namespace wick {

namespace {
constexpr size_t kMaxTokenizerBytes = size_t(1) << 30;  // tokenizer.json files are < 50 MB
constexpr size_t kMaxConfigBytes = size_t(64) << 20;
}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, const std::string& source_name,
                               std::string_view tokenizer_config_json) {
  auto impl = std::make_shared<detail::TokenizerImpl>();
  impl->source = source_name;
  impl->load(tokenizer_json, tokenizer_config_json);
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::load(const std::string& path) {
  std::string file = path, dir;
  if (io::is_directory(path)) {
    dir = path;
    file = io::join_path(path, "tokenizer.json");
    if (!io::is_file(file)) throw Error(path + ": no tokenizer.json in this folder");
  } else {
    size_t slash = path.find_last_of('/');
    dir = slash == std::string::npos ? "." : path.substr(0, slash);
  }
  std::string json = io::read_file(file, kMaxTokenizerBytes);
  std::string config;
  std::string config_path = io::join_path(dir, "tokenizer_config.json");
  if (io::is_file(config_path)) config = io::read_file(config_path, kMaxConfigBytes);
  return from_json(json, file, config);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  impl_->encode(text, add_special_tokens, ids);
  return ids;
}

namespace {

template <class Text>
std::vector<std::vector<int32_t>> encode_many(const detail::TokenizerImpl& impl,
                                              std::span<const Text> texts, bool add_special,
                                              int threads) {
  std::vector<std::vector<int32_t>> out(texts.size());
  size_t n = threads > 0 ? static_cast<size_t>(threads)
                         : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, texts.size());
  if (n <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) impl.encode(texts[i], add_special, out[i]);
    return out;
  }
  // Texts are handed out in small chunks so that uneven lengths balance.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const size_t chunk = std::max<size_t>(1, std::min<size_t>(64, texts.size() / (n * 8)));
  auto work = [&] {
    try {
      while (!failed.load(std::memory_order_relaxed)) {
        size_t b = next.fetch_add(chunk);
        if (b >= texts.size()) break;
        size_t e = std::min(texts.size(), b + chunk);
        for (size_t i = b; i < e; ++i) impl.encode(texts[i], add_special, out[i]);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(n - 1);
  for (size_t t = 1; t < n; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string> texts,
                                                          bool add_special_tokens,
                                                          int threads) const {
  return encode_many(*impl_, texts, add_special_tokens, threads);
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string_view> texts,
                                                          bool add_special_tokens,
                                                          int threads) const {
  return encode_many(*impl_, texts, add_special_tokens, threads);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

StreamDecoder Tokenizer::stream_decoder(bool skip_special_tokens) const {
  return StreamDecoder(*this, skip_special_tokens);
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  return impl_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  const std::string_view* t = impl_->text_of(id);
  if (!t) return std::nullopt;
  return std::string(*t);
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

bool Tokenizer::is_special(int32_t id) const {
  return impl_->text_of(id) != nullptr && impl_->id_special[id] != 0;
}

namespace {
std::optional<int32_t> id_of_named(const detail::TokenizerImpl& impl, const std::string& name) {
  if (name.empty()) return std::nullopt;
  return impl.token_to_id(name);
}
}  // namespace

std::optional<int32_t> Tokenizer::bos_token_id() const { return id_of_named(*impl_, impl_->bos); }
std::optional<int32_t> Tokenizer::eos_token_id() const { return id_of_named(*impl_, impl_->eos); }
std::optional<int32_t> Tokenizer::pad_token_id() const { return id_of_named(*impl_, impl_->pad); }
std::optional<int32_t> Tokenizer::unk_token_id() const { return id_of_named(*impl_, impl_->unk); }
const std::string& Tokenizer::bos_token() const { return impl_->bos; }
const std::string& Tokenizer::eos_token() const { return impl_->eos; }
const std::string& Tokenizer::pad_token() const { return impl_->pad; }
const std::string& Tokenizer::unk_token() const { return impl_->unk; }
std::optional<bool> Tokenizer::add_bos_token() const { return impl_->add_bos; }
std::optional<bool> Tokenizer::add_eos_token() const { return impl_->add_eos; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }
const std::string& Tokenizer::source() const { return impl_->source; }

// ---- StreamDecoder ------------------------------------------------------------------------
// The tokenizers library's step_decode_stream: the text of the ids seen since the last
// emitted chunk, minus the text those ids already produced, once it no longer ends in an
// incomplete character.

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

namespace {
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

std::string StreamDecoder::push(int32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    std::string p = tokenizer_.decode(ids_, skip_special_);
    if (!ends_with_replacement(p)) {
      prefix_ = std::move(p);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  std::string text = tokenizer_.decode(ids_, skip_special_);
  if (text.size() <= prefix_.size() || ends_with_replacement(text)) return "";
  if (text.compare(0, prefix_.size(), prefix_) != 0)
    throw Error(tokenizer_.source() + ": stream decode: the text of token " + std::to_string(id) +
                " rewrites text already returned (\"" + prefix_ + "\" became \"" + text + "\")");
  std::string fresh = text.substr(prefix_.size());
  size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(ids_, skip_special_);
  prefix_index_ = new_prefix_index;
  return fresh;
}

std::string StreamDecoder::flush() {
  std::string fresh;
  if (!ids_.empty()) {
    std::string text = tokenizer_.decode(ids_, skip_special_);
    if (text.size() > prefix_.size() && text.compare(0, prefix_.size(), prefix_) == 0)
      fresh = text.substr(prefix_.size());
  }
  ids_.clear();
  prefix_.clear();
  prefix_index_ = 0;
  return fresh;
}

}  // namespace wick
