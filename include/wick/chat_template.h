#pragma once
// Chat templates: the Jinja2 templates Hugging Face models ship (`chat_template` in
// tokenizer_config.json, or chat_template.jinja) rendered exactly as transformers'
// `tokenizer.apply_chat_template(messages, tokenize=False, ...)` renders them: the same Jinja
// subset and settings (sandboxed, trim_blocks and lstrip_blocks on, transformers' `tojson`,
// `raise_exception`, `strftime_now`, loop controls). A template is untrusted input: syntax
// errors name the origin, line and column; runtime errors, step and size limits are
// wick::Error; nothing a template or its variables contain can crash or hang the process.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wick {

namespace io::jinja {
struct Program;
}

/// A fixed local time for `strftime_now` (Llama 3.x templates print today's date).
struct ChatClock {
  int year = 2024, month = 1, day = 1, hour = 0, minute = 0, second = 0;
};

/// Limits and clock of one rendering.
struct ChatRenderOptions {
  /// Evaluation steps (nodes, loop iterations, bytes produced / 64) before giving up.
  uint64_t max_steps = 20'000'000;
  /// Largest output, and largest string any expression may build.
  size_t max_output_bytes = size_t(64) << 20;
  /// The time strftime_now formats; absent = the machine's local time (as transformers).
  std::optional<ChatClock> now;
};

/// One chat message with plain-text content.
struct ChatMessage {
  std::string role;
  std::string content;
};

/// What apply_chat_template passes to the template besides the messages.
struct ChatTemplateArgs {
  /// Append the assistant header so the model writes the next turn.
  bool add_generation_prompt = false;
  /// The tokenizer's special tokens (transformers passes its special_tokens_map); absent ones
  /// stay undefined in the template.
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  /// A JSON object of further variables: `tools` and `documents` (null when not given, as in
  /// transformers), `enable_thinking`, `date_string`, other special tokens, ... Empty = none.
  std::string extra_json;
  ChatRenderOptions options;
};

/// A parsed chat template; cheap to copy and safe to render from several threads at once.
class ChatTemplate {
 public:
  /// Parses `source`; `origin_name` prefixes every error ("tokenizer_config.json:
  /// chat_template"). Throws wick::Error on a syntax error.
  static ChatTemplate parse(std::string source, std::string origin_name);

  /// Renders with the variables of `context_json` (a JSON object). Object key order is kept,
  /// as Python keeps it (it shows in `tojson` and in loops over dicts).
  std::string render(std::string_view context_json, const ChatRenderOptions& options = {}) const;

  /// The name errors are prefixed with.
  const std::string& origin() const;
  /// The template text as given.
  const std::string& source() const { return source_; }
  /// The parsed program (internal to wick).
  const io::jinja::Program& program() const { return *program_; }

 private:
  ChatTemplate() = default;
  std::shared_ptr<const io::jinja::Program> program_;
  std::string source_;
};

/// Renders plain-text messages like transformers' apply_chat_template(tokenize=False).
std::string apply_chat_template(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                                const ChatTemplateArgs& args = {});

/// Renders `messages_json`, a JSON array of message objects (content may be a list of parts;
/// tool_calls, reasoning_content and any other fields reach the template as they are).
std::string apply_chat_template_json(const ChatTemplate& tmpl, std::string_view messages_json,
                                     const ChatTemplateArgs& args = {});

/// A model's chat template and special tokens, as transformers loads them.
struct ChatTemplateConfig {
  ChatTemplate tmpl;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
};

/// Loads the chat template of a model folder: `chat_template.jinja` when present, otherwise
/// `chat_template` from `tokenizer_config.json` (a string, or a list of {name, template} from
/// which `name` is taken); bos/eos tokens from tokenizer_config.json (strings or
/// {"content": ...} objects). Fails naming the file when there is no template.
ChatTemplateConfig load_chat_template(const std::string& model_dir,
                                      const std::string& name = "default");

}  // namespace wick
