// ChatML prompts for `wick generate --chat` until chat templates are rendered as Jinja.
#include "wick/generate.h"

namespace wick {
namespace {

/// The default system message a ChatML template inserts when the conversation has none (Qwen2.5
/// writes it as one string literal '<|im_start|>system\n...<|im_end|>\n'), or "".
std::string template_default_system(const std::string& tmpl) {
  const std::string open = "'<|im_start|>system\\n", close = "<|im_end|>\\n'";
  std::string found;
  bool any = false;
  for (size_t pos = tmpl.find(open); pos != std::string::npos; pos = tmpl.find(open, pos + 1)) {
    size_t begin = pos + open.size();
    size_t end = tmpl.find(close, begin);
    if (end == std::string::npos) continue;
    std::string body = tmpl.substr(begin, end - begin);
    if (body.find_first_of("'\"{}") != std::string::npos) continue;  // an expression, not a literal
    if (any && found != body) return "";                              // several: insert none
    found = body;
    any = true;
  }
  std::string out;  // the literal's escapes
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i] == '\\' && i + 1 < found.size()) {
      char e = found[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    } else {
      out += found[i];
    }
  }
  return out;
}

}  // namespace

std::string chatml_prompt(const Tokenizer& tokenizer, const std::string& user, const std::string& system) {
  const std::string& t = tokenizer.chat_template();
  if (t.empty())
    throw Error(tokenizer.source() + ": no chat template (tokenizer_config.json has no chat_template)");
  if (t.find("<|im_start|>") == std::string::npos || t.find("<|im_end|>") == std::string::npos)
    throw Error(tokenizer.source() +
                ": the chat template is not ChatML (<|im_start|>role ... <|im_end|>, as Qwen's), the only "
                "format rendered so far: pass the formatted prompt as plain text instead");
  std::string sys = system.empty() ? template_default_system(t) : system;
  std::string out;
  if (!sys.empty()) out += "<|im_start|>system\n" + sys + "<|im_end|>\n";
  out += "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
  return out;
}

}  // namespace wick
