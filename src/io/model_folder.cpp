#include "io/model_folder.h"

#include <nlohmann/json.hpp>

#include "io/files.h"
#include "wick/error.h"

namespace wick::io {

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {
      "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
      "chat_template.jinja", "chat_template.json", "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json",
      "tokenizer.model"};
  return names;
}

std::vector<std::string> copy_tokenizer_files(const std::string& from, const std::string& to) {
  std::vector<std::string> copied;
  for (const std::string& name : tokenizer_file_names()) {
    std::string src = join_path(from, name);
    if (!is_file(src)) continue;
    write_file_atomic(join_path(to, name), read_file(src, size_t(1) << 30));
    copied.push_back(name);
  }
  return copied;
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::f64: return "float64";
    default: return nullptr;
  }
}

std::string retyped_config(const std::string& text, const std::string& path, DType dtype) {
  // Ordered so that the rewritten file keeps the original's key order.
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const std::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  const char* name = torch_dtype_name(dtype);
  bool set = false;
  for (const char* k : {"torch_dtype", "dtype"})
    if (j.contains(k)) {
      j[k] = name;
      set = true;
    }
  if (!set) j["torch_dtype"] = name;
  return j.dump(2) + "\n";
}

}  // namespace wick::io
