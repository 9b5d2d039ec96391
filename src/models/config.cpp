// ModelConfig: config.json of the decoder family, validated field by field, and the RoPE
// frequencies (with Llama 3 scaling) computed as transformers computes them.
#include <cmath>
#include <limits>

#include "io/files.h"
#include "io/json.h"
#include "models/config_fields.h"
#include "wick/model.h"

namespace wick {

namespace {

using io::Json;

using detail::config_fail;
using detail::kMaxDim;
using detail::kMaxLayers;
using detail::kMaxPositions;
using detail::kMaxVocab;
using detail::optional_dim;
using detail::positive_number;
using detail::require_dim;

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& why) {
  config_fail(source, field, why);
}

/// eos_token_id as an int or a list of ints.
std::vector<int64_t> token_list(const Json& j, const char* key, const std::string& src) {
  std::vector<int64_t> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (it->is_array()) {
    if (it->size() > 1024) fail(src, key, "too many entries");
    for (const auto& e : *it) out.push_back(io::json_as<int64_t>(e, src, key));
  } else {
    out.push_back(io::json_as<int64_t>(*it, src, key));
  }
  for (int64_t t : out)
    if (t < 0) fail(src, key, "token ids must be >= 0");
  return out;
}

/// rope_scaling (transformers 4.x) or rope_parameters (5.x): type, factors; "rope_theta" may
/// live in rope_parameters.
void parse_rope(const Json& j, const std::string& src, ModelConfig& c) {
  c.rope_theta = positive_number(j, "rope_theta", src, 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) fail(src, key, std::string("expected an object, got ") + io::json_type_name(*it));
    const Json& r = *it;
    std::string field = std::string(key) + ".";
    std::string type = "default";
    if (auto t = io::json_optional<std::string>(r, "rope_type", src)) type = *t;
    else if (auto t2 = io::json_optional<std::string>(r, "type", src)) type = *t2;
    if (r.contains("rope_theta") && !r["rope_theta"].is_null()) {
      double th = io::json_as<double>(r["rope_theta"], src, field + "rope_theta");
      if (!(std::isfinite(th) && th > 0)) fail(src, field + "rope_theta", "must be a positive finite number");
      c.rope_theta = th;
    }
    if (type == "default") continue;
    if (type != "llama3")
      fail(src, field + "rope_type", "unsupported RoPE scaling type \"" + type + "\" (supported: default, llama3)");
    RopeScaling s;
    s.type = type;
    auto num = [&](const char* k, double dflt, bool required) {
      auto v = io::json_optional<double>(r, k, src);
      if (!v) {
        if (required) fail(src, field + k, "missing (required by llama3 RoPE scaling)");
        return dflt;
      }
      if (!(std::isfinite(*v) && *v > 0)) fail(src, field + k, "must be a positive finite number");
      return *v;
    };
    s.factor = num("factor", 8.0, true);
    s.low_freq_factor = num("low_freq_factor", 1.0, true);
    s.high_freq_factor = num("high_freq_factor", 4.0, true);
    auto omax = io::json_optional<int64_t>(r, "original_max_position_embeddings", src);
    if (!omax) fail(src, field + "original_max_position_embeddings", "missing (required by llama3 RoPE scaling)");
    if (*omax <= 0 || *omax > kMaxPositions) fail(src, field + "original_max_position_embeddings", "out of range");
    s.original_max_position_embeddings = *omax;
    if (!(s.high_freq_factor > s.low_freq_factor))
      fail(src, field + "high_freq_factor", "must be greater than low_freq_factor");
    c.rope_scaling = s;
  }
}

/// Per-layer attention windows (0 = full).
void parse_windows(const Json& j, const std::string& src, ModelConfig& c) {
  c.sliding_window.assign(static_cast<size_t>(c.num_hidden_layers), 0);
  auto window = optional_dim(j, "sliding_window", src, kMaxPositions);
  auto types = j.find("layer_types");
  if (types != j.end() && !types->is_null()) {
    if (!types->is_array() || static_cast<int64_t>(types->size()) != c.num_hidden_layers)
      fail(src, "layer_types", "expected a list of num_hidden_layers strings");
    for (size_t i = 0; i < types->size(); ++i) {
      std::string t = io::json_as<std::string>((*types)[i], src, "layer_types");
      if (t == "full_attention") continue;
      if (t != "sliding_attention") fail(src, "layer_types", "unsupported layer type \"" + t + "\"");
      if (!window) fail(src, "sliding_window", "required by a sliding_attention layer");
      c.sliding_window[i] = *window;
    }
    return;
  }
  if (!window) return;
  if (c.model_type == "mistral") {
    c.sliding_window.assign(c.sliding_window.size(), *window);
  } else if (c.model_type == "qwen2") {
    if (!io::json_optional<bool>(j, "use_sliding_window", src).value_or(false)) return;
    int64_t first = io::json_optional<int64_t>(j, "max_window_layers", src).value_or(c.num_hidden_layers);
    for (int64_t i = std::max<int64_t>(first, 0); i < c.num_hidden_layers; ++i) c.sliding_window[i] = *window;
  }
}

}  // namespace

namespace detail {

io::Json parse_config_object(std::string_view json_text, const std::string& source) {
  io::Json j;
  try {
    j = io::parse_json(json_text, source);
  } catch (const io::Json::exception& e) {
    // parse_json converts syntax errors; nlohmann reports some values (a number overflowing a
    // double, "1E999") with other exception types.
    throw Error(source + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": expected a JSON object, got " + io::json_type_name(j));
  return j;
}

}  // namespace detail

ModelConfig ModelConfig::parse(std::string_view json_text, const std::string& source) {
  Json j = detail::parse_config_object(json_text, source);
  ModelConfig c;
  c.model_type = io::json_require<std::string>(j, "model_type", source);
  if (c.model_type != "qwen2" && c.model_type != "llama" && c.model_type != "mistral")
    fail(source, "model_type", "unsupported model type \"" + c.model_type + "\" (supported: qwen2, llama, mistral)");
  std::string act = io::json_optional<std::string>(j, "hidden_act", source).value_or("silu");
  if (act != "silu" && act != "swish")
    fail(source, "hidden_act", "unsupported activation \"" + act + "\" (supported: silu)");

  c.vocab_size = require_dim(j, "vocab_size", source, kMaxVocab);
  c.hidden_size = require_dim(j, "hidden_size", source, kMaxDim);
  c.intermediate_size = require_dim(j, "intermediate_size", source, kMaxDim);
  c.num_hidden_layers = require_dim(j, "num_hidden_layers", source, kMaxLayers);
  c.num_attention_heads = require_dim(j, "num_attention_heads", source, kMaxDim);
  c.num_key_value_heads =
      optional_dim(j, "num_key_value_heads", source, kMaxDim).value_or(c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail(source, "num_key_value_heads", "must divide num_attention_heads (" +
                                            std::to_string(c.num_attention_heads) + "), got " +
                                            std::to_string(c.num_key_value_heads));
  if (auto hd = optional_dim(j, "head_dim", source, kMaxDim)) {
    c.head_dim = *hd;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail(source, "num_attention_heads", "must divide hidden_size when head_dim is absent");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) fail(source, "head_dim", "must be even for rotary embeddings");
  if (c.num_attention_heads * c.head_dim > kMaxDim)
    fail(source, "num_attention_heads", "heads x head_dim exceeds " + std::to_string(kMaxDim));
  c.max_position_embeddings =
      optional_dim(j, "max_position_embeddings", source, kMaxPositions).value_or(4096);
  c.rms_norm_eps = positive_number(j, "rms_norm_eps", source, 1e-6);
  parse_rope(j, source, c);
  c.tie_word_embeddings = io::json_optional<bool>(j, "tie_word_embeddings", source).value_or(false);
  bool attention_bias = io::json_optional<bool>(j, "attention_bias", source).value_or(false);
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;  // fixed in Qwen2's architecture, not configurable
  } else {
    c.qkv_bias = attention_bias;
    c.o_bias = c.model_type == "llama" && attention_bias;
    c.mlp_bias = c.model_type == "llama" && io::json_optional<bool>(j, "mlp_bias", source).value_or(false);
  }
  c.bos_token_id = io::json_optional<int64_t>(j, "bos_token_id", source);
  c.eos_token_ids = token_list(j, "eos_token_id", source);
  if (auto d = io::json_optional<std::string>(j, "torch_dtype", source)) c.torch_dtype = *d;
  else if (auto d2 = io::json_optional<std::string>(j, "dtype", source)) c.torch_dtype = *d2;
  parse_windows(j, source, c);
  return c;
}

ModelConfig ModelConfig::load(const std::string& dir) {
  std::string path = io::join_path(dir, "config.json");
  if (!io::is_file(path)) throw Error(path + ": missing (not a model folder?)");
  return parse(io::read_file(path, size_t{16} << 20), path);
}

std::vector<float> ModelConfig::rope_inv_freq() const {
  int64_t d = head_dim;
  std::vector<float> f(static_cast<size_t>(d / 2));
  // As transformers: f32 arange / dim, theta ** that, reciprocal, all in f32.
  float theta = static_cast<float>(rope_theta);
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(d));
  if (rope_scaling.type != "llama3") return f;
  // Llama 3.1: long wavelengths are divided by `factor`, short ones kept, and the band between
  // interpolated smoothly.
  const float factor = static_cast<float>(rope_scaling.factor);
  const float low = static_cast<float>(rope_scaling.low_freq_factor);
  const float high = static_cast<float>(rope_scaling.high_freq_factor);
  const double old_len = static_cast<double>(rope_scaling.original_max_position_embeddings);
  // Python floats meet f32 tensors as f32 in torch's comparisons.
  const float low_wavelen = static_cast<float>(old_len / rope_scaling.low_freq_factor);
  const float high_wavelen = static_cast<float>(old_len / rope_scaling.high_freq_factor);
  for (float& inv : f) {
    float wavelen = static_cast<float>(2.0 * M_PI) / inv;
    float scaled = wavelen > low_wavelen ? inv / factor : inv;
    bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (medium) {
      float smooth = (static_cast<float>(old_len) / wavelen - low) / (high - low);
      scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
    }
    inv = scaled;
  }
  return f;
}

int64_t ModelConfig::parameter_count() const {
  int64_t h = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  int64_t attn = h * q + 2 * h * kv + q * h;
  if (qkv_bias) attn += q + 2 * kv;
  if (o_bias) attn += h;
  int64_t mlp = 3 * h * intermediate_size + (mlp_bias ? 2 * intermediate_size + h : 0);
  int64_t layer = attn + mlp + 2 * h;
  int64_t emb = vocab_size * h;
  return emb + (tie_word_embeddings ? 0 : emb) + num_hidden_layers * layer + h;
}

DType ModelConfig::compute_dtype(Device device) const {
  if (device.type == Device::Type::cpu) return DType::f32;
  if (torch_dtype == "bfloat16") return DType::bf16;
  if (torch_dtype == "float16") return DType::f16;
  return DType::f32;
}

}  // namespace wick
