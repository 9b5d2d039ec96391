#include "io/dataset_records.h"

#include <algorithm>
#include <array>

#include "io/json.h"
#include "wick/error.h"

namespace wick::io::data {

namespace {

using nlohmann::ordered_json;

// Records nest a few levels (messages → parts → tool-call arguments); deeper is hostile.
constexpr int kMaxRecordDepth = 32;

enum class Shape { text, prompt_completion, messages, input_ids };

Shape detect_shape(const ordered_json& j, const std::string& where) {
  bool text = j.contains("text"), prompt = j.contains("prompt"),
       completion = j.contains("completion"), messages = j.contains("messages"),
       ids = j.contains("input_ids");
  std::vector<std::string> found;
  if (text) found.push_back("\"text\"");
  if (prompt || completion) found.push_back("\"prompt\"/\"completion\"");
  if (messages) found.push_back("\"messages\"");
  if (ids) found.push_back("\"input_ids\"");
  if (found.empty())
    throw Error(where +
                ": no known record shape: expected a \"text\", \"prompt\" and "
                "\"completion\", \"messages\" or \"input_ids\" field");
  if (found.size() > 1)
    throw Error(where + ": mixes the " + found[0] + " and " + found[1] +
                " record shapes (one shape per record)");
  if (text) return Shape::text;
  if (prompt || completion) {
    if (!prompt) throw Error(where + ": missing field \"prompt\" (it has \"completion\")");
    if (!completion) throw Error(where + ": missing field \"completion\" (it has \"prompt\")");
    return Shape::prompt_completion;
  }
  return messages ? Shape::messages : Shape::input_ids;
}

std::string string_field(const ordered_json& j, const char* key, const std::string& where) {
  const auto& v = j.at(key);
  if (!v.is_string())
    throw Error(where + ": \"" + key + "\": expected a string, got " + json_type_name(v));
  return v.get<std::string>();
}

std::vector<int32_t> encode(const RecordContext& ctx, std::string_view text, bool special,
                            const std::string& where, const char* field) {
  try {
    return ctx.tok.encode(text, special);
  } catch (const Error& e) {
    throw Error(where + ": \"" + field + "\": " + e.what());
  }
}

void append_eos(const RecordContext& ctx, Example& ex) {
  auto eos = ctx.tok.eos_token_id();
  if (!ctx.opts.add_eos || !eos) return;
  if (!ex.ids.empty() && ex.ids.back() == *eos) return;
  ex.ids.push_back(*eos);
  ex.target.push_back(1);
}

Example text_record(const RecordContext& ctx, const ordered_json& j, const std::string& where) {
  Example ex;
  ex.ids = encode(ctx, string_field(j, "text", where), true, where, "text");
  ex.target.assign(ex.ids.size(), 1);
  append_eos(ctx, ex);
  return ex;
}

// Prompt and completion are tokenised apart so that the mask boundary falls exactly between
// them, whatever the tokenizer would merge across it.
Example prompt_completion_record(const RecordContext& ctx, const ordered_json& j,
                                 const std::string& where) {
  Example ex;
  ex.ids = encode(ctx, string_field(j, "prompt", where), true, where, "prompt");
  ex.target.assign(ex.ids.size(), ctx.opts.mask_prompt ? 0 : 1);
  auto completion = encode(ctx, string_field(j, "completion", where), false, where, "completion");
  ex.ids.insert(ex.ids.end(), completion.begin(), completion.end());
  ex.target.resize(ex.ids.size(), 1);
  append_eos(ctx, ex);
  return ex;
}

Example input_ids_record(const RecordContext& ctx, const ordered_json& j,
                         const std::string& where) {
  const auto& arr = j.at("input_ids");
  if (!arr.is_array())
    throw Error(where + ": \"input_ids\": expected an array of token ids, got " +
                json_type_name(arr));
  const int64_t vocab = ctx.tok.vocab_size();
  Example ex;
  ex.ids.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    const auto& v = arr[i];
    std::string at = where + ": \"input_ids\"[" + std::to_string(i) + "]";
    auto outside = [&](const std::string& id) {
      return Error(at + ": token id " + id + " is outside the vocabulary [0, " +
                   std::to_string(vocab) + ")");
    };
    if (v.is_number_unsigned()) {
      uint64_t id = v.get<uint64_t>();
      if (id >= static_cast<uint64_t>(vocab)) throw outside(std::to_string(id));
      ex.ids.push_back(static_cast<int32_t>(id));
    } else if (v.is_number_integer()) {
      int64_t id = v.get<int64_t>();
      if (id < 0 || id >= vocab) throw outside(std::to_string(id));
      ex.ids.push_back(static_cast<int32_t>(id));
    } else {
      throw Error(at + ": expected an integer token id, got " + json_type_name(v));
    }
  }
  ex.target.assign(ex.ids.size(), 1);
  return ex;
}

// Roles the common templates know; anything else is more likely a typo (which would silently
// turn an answer into prompt) than a real role.
constexpr std::array<const char*, 7> kRoles = {"system", "developer", "user",    "assistant",
                                               "tool",   "ipython",   "function"};

void check_messages(const ordered_json& messages, const std::string& where) {
  if (!messages.is_array())
    throw Error(where + ": \"messages\": expected an array of messages, got " +
                json_type_name(messages));
  if (messages.empty()) throw Error(where + ": \"messages\" is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    std::string at = where + ": \"messages\"[" + std::to_string(i) + "]";
    if (!m.is_object())
      throw Error(at + ": expected an object with \"role\" and \"content\", got " +
                  json_type_name(m));
    auto role = m.find("role");
    if (role == m.end()) throw Error(at + ": missing field \"role\"");
    if (!role->is_string())
      throw Error(at + ": \"role\": expected a string, got " + json_type_name(*role));
    const auto& r = role->get_ref<const std::string&>();
    if (std::none_of(kRoles.begin(), kRoles.end(), [&](const char* k) { return r == k; }))
      throw Error(at + ": unknown role \"" + r +
                  "\" (expected system, developer, user, assistant, tool, ipython or function)");
    auto content = m.find("content");
    bool has_calls = m.contains("tool_calls") && !m.at("tool_calls").is_null();
    if (content == m.end() || content->is_null()) {
      // An assistant turn that only calls tools may have no text.
      if (!(r == "assistant" && has_calls)) throw Error(at + ": missing field \"content\"");
    } else if (content->is_array()) {
      for (const auto& part : *content)
        if (!part.is_object())
          throw Error(at + ": \"content\": a list of parts must hold objects, got " +
                      json_type_name(part));
    } else if (!content->is_string()) {
      throw Error(at + ": \"content\": expected a string or a list of parts, got " +
                  json_type_name(*content));
    }
  }
}

Example messages_record(const RecordContext& ctx, const ordered_json& j, const std::string& where,
                        RecordNotes& notes) {
  const auto& messages = j.at("messages");
  check_messages(messages, where);
  ordered_json tools = nullptr;
  if (auto t = j.find("tools"); t != j.end() && !t->is_null()) {
    if (!t->is_array())
      throw Error(where + ": \"tools\": expected an array, got " + json_type_name(*t));
    tools = *t;
  }
  if (!ctx.chat)
    throw Error(where +
                ": a \"messages\" record needs a chat template, and the model has none "
                "(chat_template.jinja or chat_template in tokenizer_config.json)");
  ChatTokens chat = tokenize_chat(ctx, messages, tools, where);
  notes.chat_fallback = chat.fallback;
  Example ex;
  ex.ids = std::move(chat.ids);
  ex.target = std::move(chat.target);
  return ex;
}

}  // namespace

Example read_record(const RecordContext& ctx, std::string_view line, const std::string& where,
                    RecordNotes& notes) {
  // The JSON parser takes a NUL byte for the end of its input and would ignore what follows.
  if (size_t nul = line.find('\0'); nul != std::string_view::npos)
    throw Error(where + ": invalid JSON at byte " + std::to_string(nul + 1) +
                ": a NUL byte (not allowed in JSON text)");
  ordered_json j = parse_json_strict_ordered(line, where, kMaxRecordDepth);
  if (!j.is_object())
    throw Error(where + ": expected a JSON object (one record a line), got " + json_type_name(j));
  Example ex;
  switch (detect_shape(j, where)) {
    case Shape::text:
      ex = text_record(ctx, j, where);
      break;
    case Shape::prompt_completion:
      ex = prompt_completion_record(ctx, j, where);
      break;
    case Shape::messages:
      ex = messages_record(ctx, j, where, notes);
      break;
    case Shape::input_ids:
      ex = input_ids_record(ctx, j, where);
      break;
  }
  if (ex.ids.size() < 2)
    throw Error(where + ": the record is " + std::to_string(ex.ids.size()) +
                " token(s) long; training needs at least 2 (a token to predict from and one to "
                "predict)");
  const int64_t max_len = ctx.opts.max_seq_len;
  if (static_cast<int64_t>(ex.ids.size()) > max_len) {
    if (ctx.opts.overlong == Overlong::error)
      throw Error(where + ": the record is " + std::to_string(ex.ids.size()) +
                  " tokens long, more than the maximum sequence length " + std::to_string(max_len) +
                  " (raise --max-seq-len, or pass --truncate to cut "
                  "long records)");
    ex.ids.resize(static_cast<size_t>(max_len));
    ex.target.resize(static_cast<size_t>(max_len));
    notes.truncated = true;
  }
  // Position 0 is never predicted, so a target there alone teaches nothing.
  if (std::find(ex.target.begin() + 1, ex.target.end(), 1) == ex.target.end())
    throw Error(where + ": the record has no target tokens" +
                std::string(notes.truncated
                                ? " left after truncation to " + std::to_string(max_len) + " tokens"
                                : "") +
                (ctx.opts.mask_prompt ? " (with prompt masking only completion / assistant "
                                        "tokens are targets)"
                                      : ""));
  return ex;
}

}  // namespace wick::io::data
