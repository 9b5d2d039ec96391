#pragma once
// Token-id arguments shared by the subcommands that take `--tokens 1,2,3`.
#include <cstdint>
#include <string>
#include <vector>

namespace wick::cli {

/// Parses comma-separated ids; anything that is not an integer in [0, vocab) is a wick::Error
/// naming the item.
std::vector<int64_t> parse_token_list(const std::string& text, int64_t vocab);

}  // namespace wick::cli
