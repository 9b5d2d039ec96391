// Chat records: rendering with the model's template and finding the assistant spans to train on.
#include <optional>
#include <utility>

#include "io/chat_template_json.h"
#include "io/dataset_records.h"
#include "wick/error.h"

namespace wick::io::data {

namespace {

using nlohmann::ordered_json;

class Renderer {
 public:
  Renderer(const RecordContext& ctx, const ordered_json& messages, const ordered_json& tools)
      : ctx_(ctx), messages_(messages) {
    if (!tools.is_null()) extra_ = ordered_json{{"tools", tools}};
  }

  // messages[:count] rendered as transformers' apply_chat_template(tokenize=False) would.
  std::string render(size_t count, bool add_generation_prompt) const {
    ChatTemplateArgs args;
    args.add_generation_prompt = add_generation_prompt;
    args.bos_token = ctx_.chat->bos_token;
    args.eos_token = ctx_.chat->eos_token;
    args.options = ctx_.render;
    if (count == messages_.size())
      return io::apply_chat_template(ctx_.chat->tmpl, messages_, args, extra_);
    ordered_json head = ordered_json::array();
    for (size_t i = 0; i < count; ++i) head.push_back(messages_[i]);
    return io::apply_chat_template(ctx_.chat->tmpl, head, args, extra_);
  }

  // Where messages[:count] ends inside `full`, when its rendering is a prefix of it. A template
  // may refuse a partial conversation (raise_exception); that is "not incremental" too.
  std::optional<size_t> prefix_end(const std::string& full, size_t count,
                                   bool add_generation_prompt) const {
    std::string head;
    try {
      head = render(count, add_generation_prompt);
    } catch (const Error&) {
      return std::nullopt;
    }
    if (full.compare(0, head.size(), head) != 0) return std::nullopt;
    return head.size();
  }

 private:
  const RecordContext& ctx_;
  const ordered_json& messages_;
  ordered_json extra_ = nullptr;
};

// Assistant spans [begin, end) of `full`: each from the end of the conversation before the turn
// (with the generation prompt, so the assistant header is prompt) to the end of the conversation
// through the turn (its content and end-of-turn tokens). Empty when some prefix does not render
// as a prefix of the whole.
std::vector<std::pair<size_t, size_t>> assistant_spans(const Renderer& r, const std::string& full,
                                                       const std::vector<size_t>& turns) {
  std::vector<std::pair<size_t, size_t>> spans;
  size_t done = 0;
  for (size_t i : turns) {
    auto begin = r.prefix_end(full, i, true);
    auto end = r.prefix_end(full, i + 1, false);
    if (!begin || !end || *begin < done || *end < *begin) return {};
    spans.emplace_back(*begin, *end);
    done = *end;
  }
  return spans;
}

std::vector<int32_t> encode(const RecordContext& ctx, std::string_view text,
                            const std::string& where) {
  try {
    return ctx.tok.encode(text, false);
  } catch (const Error& e) {
    throw Error(where + ": rendered conversation: " + e.what());
  }
}

}  // namespace

ChatTokens tokenize_chat(const RecordContext& ctx, const ordered_json& messages,
                         const ordered_json& tools, const std::string& where) {
  ChatTokens out;
  auto render_all = [&](const Renderer& r, size_t count) {
    try {
      return r.render(count, false);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  };
  // Special tokens are already in the text: transformers tokenises a rendered chat without
  // adding them again.
  if (!ctx.opts.mask_prompt) {
    out.ids = encode(ctx, render_all(Renderer(ctx, messages, tools), messages.size()), where);
    out.target.assign(out.ids.size(), 1);
    return out;
  }
  std::vector<size_t> turns;
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].at("role").get_ref<const std::string&>() == "assistant") turns.push_back(i);
  if (turns.empty())
    throw Error(where +
                ": no assistant message (with prompt masking only assistant turns are "
                "targets)");
  // Messages after the last assistant turn would carry no target; the conversation is rendered
  // as ending with that turn, as a model trained on it would see it when writing the turn.
  ordered_json used = messages;
  used.erase(used.begin() + static_cast<std::ptrdiff_t>(turns.back() + 1), used.end());
  Renderer r(ctx, used, tools);
  std::string full = render_all(r, used.size());
  auto spans = assistant_spans(r, full, turns);
  if (spans.empty()) {
    // Templates that rewrite earlier turns (Qwen3 drops the reasoning of turns before the last
    // user message) still render the conversation up to its last assistant turn as a prefix.
    auto begin = r.prefix_end(full, turns.back(), true);
    if (!begin)
      throw Error(where +
                  ": the chat template does not render the conversation before the last "
                  "assistant message as a prefix of the whole, so the prompt cannot be "
                  "masked (train without prompt masking)");
    spans = {{*begin, full.size()}};
    out.fallback = true;
  }
  // Tokenising segment by segment puts the mask boundaries exactly on the span edges.
  size_t pos = 0;
  auto add = [&](size_t begin, size_t end, uint8_t target) {
    if (end <= begin) return;
    auto ids = encode(ctx, std::string_view(full).substr(begin, end - begin), where);
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.target.resize(out.ids.size(), target);
  };
  for (auto [begin, end] : spans) {
    add(pos, begin, 0);
    add(begin, end, 1);
    pos = end;
  }
  add(pos, full.size(), 0);
  return out;
}

}  // namespace wick::io::data
