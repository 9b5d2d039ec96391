// Fuzz target: a JSONL dataset (arbitrary bytes) read by Dataset::from_jsonl with a byte-level
// tokenizer that has ChatML special tokens and an EOS, and the ChatML template, so that every
// record shape, chat rendering and prompt masking are reached. The first byte picks the
// options (masking, truncation, EOS, a small maximum length). Every example that loads must
// keep the promises the trainer relies on (ids in range, one flag per id, a target to learn,
// the length limit), and batches must build from it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "../tests/common/byte_tokenizer.h"
#include "wick/data.h"
#include "wick/error.h"

namespace {

const char* kChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

void check(const wick::Dataset& d, int64_t max_len, int32_t vocab) {
  for (size_t i = 0; i < d.size(); ++i) {
    const auto& ex = d[i];
    if (ex.ids.size() < 2 || ex.target.size() != ex.ids.size()) std::abort();
    if (static_cast<int64_t>(ex.ids.size()) > max_len) std::abort();
    bool learns = false;
    for (size_t j = 0; j < ex.ids.size(); ++j) {
      if (ex.ids[j] < 0 || ex.ids[j] >= vocab) std::abort();
      if (j > 0 && ex.target[j]) learns = true;
    }
    if (!learns) std::abort();
  }
  auto batches = wick::ordered_batches(d, 3, 0, 8);
  int64_t targets = 0;
  for (const auto& b : batches) targets += b.target_tokens;
  if (targets != d.target_tokens()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const wick::Tokenizer tok =
      wt::byte_tokenizer(R"({"eos_token": "</s>"})", {{"a", "b"}, {"ab", "c"}},
                         {"<|im_start|>", "<|im_end|>", "</s>"});
  static const wick::ChatTemplateConfig chat{wick::ChatTemplate::parse(kChatML, "chatml"),
                                             std::nullopt, std::string("<|im_end|>")};
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  wick::DatasetOptions opts;
  opts.mask_prompt = flags & 1;
  opts.overlong = flags & 2 ? wick::Overlong::truncate : wick::Overlong::error;
  opts.add_eos = !(flags & 4);
  opts.max_seq_len = flags & 8 ? 16 : 256;
  opts.threads = 1;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    auto d = wick::Dataset::from_jsonl(text, "fuzz.jsonl", tok, flags & 16 ? nullptr : &chat, opts);
    check(d, opts.max_seq_len, tok.vocab_size());
  } catch (const wick::Error&) {
  }
  return 0;
}
