#pragma once
// One JSONL record → one Example: shape detection, tokenisation and the target mask. Private to
// the dataset reader (src/io/dataset.cpp), which splits files into lines and threads.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "wick/data.h"

namespace wick::io::data {

/// What a record reader needs; shared, read-only, by every thread.
struct RecordContext {
  const Tokenizer& tok;
  const ChatTemplateConfig* chat;
  const DatasetOptions& opts;
  /// One clock for the whole file, so templates that print today's date render every record
  /// (and every prefix of one) alike.
  ChatRenderOptions render;
};

/// Things about a record that the dataset summarises in warnings.
struct RecordNotes {
  bool truncated = false;
  /// The chat template did not render the conversation incrementally, so everything before
  /// the last assistant turn was masked.
  bool chat_fallback = false;
};

/// Parses and tokenises one (non-blank) line. `where` ("FILE:LINE") prefixes every error.
Example read_record(const RecordContext& ctx, std::string_view line, const std::string& where,
                    RecordNotes& notes);

/// Token ids and target flags of a chat record (the "messages" array and optional "tools"),
/// already validated by the caller.
struct ChatTokens {
  std::vector<int32_t> ids;
  std::vector<uint8_t> target;
  bool fallback = false;
};
ChatTokens tokenize_chat(const RecordContext& ctx, const nlohmann::ordered_json& messages,
                         const nlohmann::ordered_json& tools, const std::string& where);

}  // namespace wick::io::data
