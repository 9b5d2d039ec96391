// generation_config.json: the sampling defaults and EOS ids a model folder ships with.
#include <algorithm>
#include <cstdint>

#include "io/files.h"
#include "io/json.h"
#include "wick/generate.h"

namespace wick {
namespace {

void add_unique(std::vector<int32_t>& ids, int64_t id) {
  if (id < 0 || id > INT32_MAX) return;  // config.json's ids were checked by its parser
  if (std::find(ids.begin(), ids.end(), static_cast<int32_t>(id)) == ids.end()) ids.push_back(static_cast<int32_t>(id));
}

}  // namespace

GenerationConfig GenerationConfig::parse(std::string_view json_text, const std::string& source) {
  io::Json j = io::parse_json(json_text, source);
  if (!j.is_object()) throw Error(source + ": expected a JSON object");
  GenerationConfig g;
  SamplingParams& s = g.sampling;
  // transformers' GenerationConfig defaults; do_sample false means greedy.
  s.do_sample = io::json_optional<bool>(j, "do_sample", source).value_or(false);
  s.temperature = io::json_optional<double>(j, "temperature", source).value_or(1.0);
  s.top_k = io::json_optional<int64_t>(j, "top_k", source).value_or(50);
  s.top_p = io::json_optional<double>(j, "top_p", source).value_or(1.0);
  s.min_p = io::json_optional<double>(j, "min_p", source).value_or(0.0);
  s.repetition_penalty = io::json_optional<double>(j, "repetition_penalty", source).value_or(1.0);
  if (s.do_sample && s.temperature == 0.0) s.do_sample = false;  // transformers refuses it; greedy is meant
  try {
    s.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  g.max_new_tokens = io::json_optional<int64_t>(j, "max_new_tokens", source);
  if (g.max_new_tokens && *g.max_new_tokens < 1) throw Error(source + ": max_new_tokens must be >= 1");
  auto eos = [&](const io::Json& v, const std::string& key) {
    int64_t id = io::json_as<int64_t>(v, source, key);
    if (id < 0 || id > INT32_MAX) throw Error(source + ": " + key + ": token id " + std::to_string(id) + " out of range");
    add_unique(g.eos_token_ids, id);
  };
  if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    if (it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) eos((*it)[i], "eos_token_id[" + std::to_string(i) + "]");
    } else {
      eos(*it, "eos_token_id");
    }
  }
  return g;
}

GenerationConfig GenerationConfig::load(const std::string& dir) {
  std::string path = io::join_path(dir, "generation_config.json");
  if (!io::is_file(path)) return GenerationConfig{};
  return parse(io::read_file(path, size_t(1) << 20), path);
}

std::vector<int32_t> default_eos_token_ids(const ModelConfig& config, const GenerationConfig& generation,
                                           const Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  for (int32_t id : generation.eos_token_ids) add_unique(ids, id);
  for (int64_t id : config.eos_token_ids) add_unique(ids, id);
  if (tokenizer)
    if (auto e = tokenizer->eos_token_id()) add_unique(ids, *e);
  return ids;
}

}  // namespace wick
