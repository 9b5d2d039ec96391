#include "io/tok_vocab.h"

#include "wick/error.h"

namespace wick::detail::tok {

void Vocab::load(const io::Json& obj, const Where& where) {
  if (!obj.is_object())
    throw Error(where.str() + ": expected an object {token: id}, got " + io::json_type_name(obj));
  to_id_.reserve(obj.size());
  tokens_.clear();
  tokens_.reserve(obj.size());
  index_.clear();
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const io::Json& v = it.value();
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw Error(where.str() + ": \"" + it.key() + "\": expected an integer id, got " +
                  io::json_type_name(v));
    int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(kMaxTokenId)
                     ? kMaxTokenId + 1
                     : v.get<int64_t>();
    if (id < 0 || id > kMaxTokenId)
      throw Error(where.str() + ": \"" + it.key() + "\": id " + v.dump() +
                  " is out of range [0, " + std::to_string(kMaxTokenId) + "]");
    if (static_cast<size_t>(id) >= index_.size()) index_.resize(static_cast<size_t>(id) + 1, -1);
    if (index_[id] >= 0)
      throw Error(where.str() + ": id " + std::to_string(id) + " is used by both \"" +
                  tokens_[index_[id]] + "\" and \"" + it.key() + "\"");
    index_[id] = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(it.key());
    to_id_.set(it.key(), static_cast<int32_t>(id));
  }
}

}  // namespace wick::detail::tok
