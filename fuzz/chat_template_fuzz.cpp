// Fuzz target: a chat template's source (arbitrary bytes) parsed and rendered with a fixed
// conversation (system, user, assistant with a tool call, tool result), tools, special tokens
// and a fixed clock, under small step and size limits so that each input runs in milliseconds.
// Anything but success or a wick::Error is a finding: a crash, a sanitizer report, another
// exception type, a hang, or output beyond the size limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "wick/chat_template.h"
#include "wick/error.h"

namespace {

const char* kMessages = R"([
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": " Hi \"there\" — ünïcödé 🎉\n"},
  {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello", "reasoning_content": null,
   "tool_calls": [{"type": "function", "function": {"name": "get", "arguments": {"q": [1, 2.5, null]}}}]},
  {"role": "tool", "content": {"result": "ok"}},
  {"role": "user", "content": [{"type": "text", "text": "and?"}, {"type": "image"}]}
])";

const char* kExtra = R"({
  "tools": [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}],
  "enable_thinking": false, "pad_token": "<pad>"
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxOutput = size_t(1) << 20;
  std::string source(reinterpret_cast<const char*>(data), size);
  try {
    auto tmpl = wick::ChatTemplate::parse(std::move(source), "fuzz");
    wick::ChatTemplateArgs args;
    args.add_generation_prompt = size % 2 == 0;
    args.bos_token = "<s>";
    args.eos_token = "</s>";
    args.extra_json = kExtra;
    args.options.max_steps = 200000;
    args.options.max_output_bytes = kMaxOutput;
    args.options.now = wick::ChatClock{2024, 7, 26, 12, 0, 0};
    std::string out = wick::apply_chat_template_json(tmpl, kMessages, args);
    if (out.size() > kMaxOutput) std::abort();
  } catch (const wick::Error&) {
  }
  return 0;
}
