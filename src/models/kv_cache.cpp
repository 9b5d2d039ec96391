// KVCache: per-layer keys and values of the positions seen so far.
#include "graph/ops_common.h"
#include "wick/model.h"
#include "wick/ops.h"

namespace wick {

KVCache::KVCache(const ModelConfig& config, int64_t batch, int64_t max_length, DType dtype)
    : batch_(batch),
      max_length_(max_length),
      kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim),
      dtype_(dtype) {
  if (batch <= 0 || max_length <= 0)
    throw Error("KVCache: batch and max_length must be positive, got " + std::to_string(batch) + " and " +
                std::to_string(max_length));
  if (!is_floating(dtype)) throw Error("KVCache: floating dtype expected");
  k_.resize(static_cast<size_t>(config.num_hidden_layers));
  v_.resize(k_.size());
  // Lazy zeros: the storage appears when the first step is evaluated.
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l] = zeros({batch_, kv_heads_, max_length_, head_dim_}, dtype_);
    v_[l] = zeros({batch_, kv_heads_, max_length_, head_dim_}, dtype_);
  }
}

size_t KVCache::nbytes() const {
  return 2 * k_.size() * static_cast<size_t>(batch_ * kv_heads_ * max_length_ * head_dim_) * itemsize(dtype_);
}

void KVCache::reset() {
  // Positions past length() are never read, so the buffers are kept as they are.
  length_ = 0;
}

void KVCache::check_step(int64_t layer, const Tensor& k, const Tensor& v) const {
  if (layer < 0 || layer >= num_layers())
    throw Error("KVCache: layer " + std::to_string(layer) + " out of range (" + std::to_string(num_layers()) + " layers)");
  Shape expect = {batch_, kv_heads_, k.ndim() == 4 ? k.shape()[2] : -1, head_dim_};
  if (k.shape() != expect || v.shape() != expect)
    throw Error("KVCache: k " + shape_str(k.shape()) + " / v " + shape_str(v.shape()) + " do not fit a cache of [" +
                std::to_string(batch_) + "," + std::to_string(kv_heads_) + ",T," + std::to_string(head_dim_) + "]");
}

std::pair<Tensor, Tensor> KVCache::append(int64_t layer, const Tensor& k, const Tensor& v) {
  check_step(layer, k, v);
  int64_t t = k.shape()[2];
  if (length_ + t > max_length_)
    throw Error("KVCache: " + std::to_string(length_) + " + " + std::to_string(t) + " positions exceed max_length " +
                std::to_string(max_length_));
  size_t l = static_cast<size_t>(layer);
  // A functional write whose output reuses the cache's buffer once the previous step's views
  // are gone, so each step costs only the new positions; attention reads the valid prefix.
  k_[l] = slice_update(k_[l], k, 2, length_);
  v_[l] = slice_update(v_[l], v, 2, length_);
  return {slice(k_[l], 2, 0, length_ + t), slice(v_[l], 2, 0, length_ + t)};
}

std::pair<Tensor, Tensor> KVCache::write(int64_t layer, const Tensor& k, const Tensor& v, const Tensor& position) {
  check_step(layer, k, v);
  size_t l = static_cast<size_t>(layer);
  // The buffers keep their tensors: graphs recorded over them see every later write.
  return {detail::write_at(k_[l], k, 2, position), detail::write_at(v_[l], v, 2, position)};
}

void KVCache::advance(int64_t t) {
  if (t < 0 || length_ + t > max_length_) throw Error("KVCache::advance: out of range");
  length_ += t;
}

}  // namespace wick
