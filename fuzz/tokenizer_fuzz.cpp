// libFuzzer target: a tokenizer.json from the fuzzer's bytes must either load or fail with
// wick::Error; a loaded tokenizer then encodes and decodes fixed texts without crashing.
//
//   (with the WICK_FUZZ build) ./tokenizer_fuzz fuzz/corpus/tokenizer
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wick/error.h"
#include "wick/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    wick::Tokenizer tok = wick::Tokenizer::from_json(json, "fuzz.json");
    static const char* const kTexts[] = {
        "",
        "Hello, world! It's 2024: caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
        "  <s> [CLS] <|im_start|>user\nhi<|im_end|> \t\n\n  x  ",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (const char* text : kTexts) {
      std::vector<int32_t> ids = tok.encode(text, true);
      std::string back = tok.decode(ids, false);
      (void)tok.decode(ids, true);
      wick::StreamDecoder stream = tok.stream_decoder();
      for (int32_t id : ids) (void)stream.push(id);
      (void)stream.flush();
      for (int32_t id : ids) (void)tok.id_to_token(id);
    }
    // Ids the tokenizer never produced, including out-of-range ones.
    std::vector<int32_t> odd = {-1, 0, 1, 2, 3, tok.vocab_size() - 1, tok.vocab_size(), INT32_MAX};
    (void)tok.decode(odd, false);
    (void)tok.decode(odd, true);
  } catch (const wick::Error&) {
    // Rejected cleanly: the expected outcome for most inputs.
  }
  return 0;
}
