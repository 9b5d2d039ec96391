// Embedder: tokenization with prefix and truncation, length-sorted padded batches through the
// encoder, pooling and normalisation, results in input order.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "wick/embed.h"
#include "wick/ops.h"

namespace wick {

Pooling parse_pooling(std::string_view name) {
  if (name == "mean") return Pooling::mean;
  if (name == "cls") return Pooling::cls;
  if (name == "max") return Pooling::max;
  throw Error("unknown pooling \"" + std::string(name) + "\" (expected mean, cls or max)");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::mean: return "mean";
    case Pooling::cls: return "cls";
    case Pooling::max: return "max";
  }
  return "?";
}

Embedder::Embedder(std::shared_ptr<BertModel> model, Tokenizer tokenizer)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {
  if (!model_) throw Error("Embedder: null model");
}

int64_t Embedder::dimension() const { return model_->config().hidden_size; }

int64_t Embedder::max_length(const EmbedOptions& o) const {
  int64_t limit = model_->config().max_tokens();
  if (o.max_length < 0) throw Error("embed: max_length must be >= 0, got " + std::to_string(o.max_length));
  return o.max_length > 0 ? std::min(o.max_length, limit) : limit;
}

namespace {

/// Cuts `full` (special tokens around `content`) to `limit` tokens by dropping the end of the
/// content, as transformers' truncation does: the special tokens stay.
std::vector<int32_t> truncate_ids(const std::vector<int32_t>& full, const std::vector<int32_t>& content, size_t limit,
                                  std::string_view text) {
  if (content.size() > full.size())
    throw Error("embed: cannot truncate: the text has more tokens without special tokens than with them");
  size_t specials = full.size() - content.size();
  if (limit <= specials)
    throw Error("embed: max_length " + std::to_string(limit) + " leaves no room for text after the " +
                std::to_string(specials) + " special tokens");
  auto at = std::search(full.begin(), full.end(), content.begin(), content.end());
  if (at == full.end() && !content.empty())
    throw Error("embed: cannot truncate \"" + std::string(text.substr(0, 40)) +
                "...\": the tokenizer's post-processor does not keep the text's tokens in one piece");
  size_t start = static_cast<size_t>(at - full.begin());
  std::vector<int32_t> out(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(start));
  out.insert(out.end(), content.begin(), content.begin() + static_cast<std::ptrdiff_t>(limit - specials));
  out.insert(out.end(), full.begin() + static_cast<std::ptrdiff_t>(start + content.size()), full.end());
  return out;
}

}  // namespace

std::vector<int32_t> Embedder::tokenize(std::string_view text, const EmbedOptions& o) const {
  std::string input = o.prefix.empty() ? std::string(text) : o.prefix + std::string(text);
  std::vector<int32_t> ids = tokenizer_.encode(input, true);
  size_t limit = static_cast<size_t>(max_length(o));
  if (ids.size() <= limit) return ids;
  if (!o.truncate)
    throw Error("embed: text of " + std::to_string(ids.size()) + " tokens exceeds max_length " +
                std::to_string(limit) + " (truncation is off)");
  return truncate_ids(ids, tokenizer_.encode(input, false), limit, text);
}

Tensor Embedder::embed(const std::vector<std::string>& texts, const EmbedOptions& o) const {
  std::vector<std::vector<int32_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      ids[i] = tokenize(texts[i], o);
    } catch (const Error& e) {
      throw Error("text " + std::to_string(i) + ": " + e.what());
    }
  }
  return embed_tokens(ids, o);
}

Tensor Embedder::embed_tokens(const std::vector<std::vector<int32_t>>& ids, const EmbedOptions& o) const {
  const BertConfig& c = model_->config();
  const int64_t H = c.hidden_size, N = static_cast<int64_t>(ids.size());
  if (o.batch_size <= 0) throw Error("embed: batch_size must be positive, got " + std::to_string(o.batch_size));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) throw Error("embed: text " + std::to_string(i) + " has no tokens");
    if (static_cast<int64_t>(ids[i].size()) > c.max_tokens())
      throw Error("embed: text " + std::to_string(i) + " has " + std::to_string(ids[i].size()) +
                  " tokens, more than the model's " + std::to_string(c.max_tokens()) + " positions");
    for (int32_t t : ids[i])
      if (t < 0 || t >= c.vocab_size)
        throw Error("embed: text " + std::to_string(i) + ": token id " + std::to_string(t) +
                    " outside the model's vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  }
  std::vector<float> out(static_cast<size_t>(N * H));
  // Longest first (as sentence-transformers): batches of similar lengths carry little padding,
  // and the first batch shows at once whether the largest one fits in memory.
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  for (size_t b0 = 0; b0 < order.size(); b0 += static_cast<size_t>(o.batch_size)) {
    size_t b1 = std::min(order.size(), b0 + static_cast<size_t>(o.batch_size));
    const int64_t B = static_cast<int64_t>(b1 - b0);
    const int64_t T = static_cast<int64_t>(ids[order[b0]].size());
    std::vector<std::vector<int32_t>> seqs;
    std::vector<bool> mask(static_cast<size_t>(B * T), false);
    for (int64_t r = 0; r < B; ++r) {
      const auto& seq = ids[order[b0 + static_cast<size_t>(r)]];
      seqs.push_back(seq);
      std::fill(mask.begin() + r * T, mask.begin() + r * T + static_cast<int64_t>(seq.size()), true);
    }
    Tensor mask_t = Tensor::from_vector(mask, {B, T});
    // The dense layers see only real tokens; attention masks the padding of the [B, T] grid.
    Tensor hidden = model_->forward_packed(seqs);
    Tensor v = pool(hidden, mask_t, o.pooling);
    if (o.normalize) v = l2_normalize(v);
    std::vector<float> rows = v.to_vector<float>();
    for (int64_t r = 0; r < B; ++r)
      std::memcpy(out.data() + order[b0 + static_cast<size_t>(r)] * H, rows.data() + r * H,
                  static_cast<size_t>(H) * sizeof(float));
    if (o.progress) o.progress(b1, order.size());
  }
  return Tensor::from_vector(out, {N, H});
}

}  // namespace wick
