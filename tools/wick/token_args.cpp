#include "token_args.h"

#include "wick/error.h"

namespace wick::cli {

std::vector<int64_t> parse_token_list(const std::string& text, int64_t vocab) {
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size())
      throw Error("--tokens: \"" + item + "\" is not an integer (expected ids like 1,2,3)");
    if (v < 0 || v >= vocab)
      throw Error("--tokens: id " + item + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

}  // namespace wick::cli
