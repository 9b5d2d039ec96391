// The files written beside a trained tokenizer: tokenizer_config.json (with an optional ChatML
// chat template) and the atomic writer of the pair.
#include <filesystem>
#include <system_error>

#include "io/files.h"
#include "io/json.h"
#include "wick/error.h"
#include "wick/tokenizer_train.h"

namespace wick {

std::string chatml_chat_template() {
  // Qwen's message format without its system-prompt default: one block per message, and the
  // assistant header when a generation prompt is asked for. `\n` is Jinja's escape, kept as two
  // characters in the template text.
  return "{%- for message in messages %}"
         "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
         "{%- endfor %}"
         "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
}

std::string bpe_tokenizer_config_json(const std::vector<std::string>& special_tokens,
                                      const BpeTokenizerConfigOptions& options) {
  io::Json c = io::Json::object();
  io::Json decoder = io::Json::object();
  for (size_t i = 0; i < special_tokens.size(); ++i) {
    decoder[std::to_string(i)] = {{"content", special_tokens[i]}, {"lstrip", false},
                                  {"normalized", false},          {"rstrip", false},
                                  {"single_word", false},         {"special", true}};
  }
  c["added_tokens_decoder"] = decoder;
  c["bos_token"] = nullptr;
  io::Json first = special_tokens.empty() ? io::Json(nullptr) : io::Json(special_tokens[0]);
  c["eos_token"] = first;
  c["pad_token"] = first;
  c["clean_up_tokenization_spaces"] = false;
  if (options.model_max_length <= 0)
    throw Error("tokenizer_config.json: model_max_length must be positive, got " +
                std::to_string(options.model_max_length));
  c["model_max_length"] = options.model_max_length;
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (options.chat_template == "chatml") {
    for (const char* needed : {"<|im_start|>", "<|im_end|>"}) {
      bool have = false;
      for (const auto& s : special_tokens) have = have || s == needed;
      if (!have)
        throw Error(std::string("chat template chatml needs the special token ") + needed +
                    " (add it to the special tokens)");
    }
    c["chat_template"] = chatml_chat_template();
  } else if (!options.chat_template.empty()) {
    throw Error("unknown chat template \"" + options.chat_template + "\" (known: chatml)");
  }
  return c.dump(2) + "\n";
}

void write_bpe_tokenizer(const std::string& dir, std::string_view tokenizer_json,
                         std::string_view config_json) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !io::is_directory(dir))
    throw Error(dir + ": cannot create the output folder" + (ec ? ": " + ec.message() : ""));
  io::write_file_atomic(io::join_path(dir, "tokenizer.json"), tokenizer_json);
  if (!config_json.empty())
    io::write_file_atomic(io::join_path(dir, "tokenizer_config.json"), config_json);
}

}  // namespace wick
