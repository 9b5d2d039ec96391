// BertConfig: config.json of the BERT family, validated field by field, with transformers'
// defaults for the fields a file may leave out.
#include "io/files.h"
#include "io/json.h"
#include "models/config_fields.h"
#include "wick/encoder.h"

namespace wick {

using detail::config_fail;

BertConfig BertConfig::parse(std::string_view json_text, const std::string& source) {
  io::Json j = detail::parse_config_object(json_text, source);
  BertConfig c;
  c.model_type = io::json_require<std::string>(j, "model_type", source);
  if (c.model_type != "bert" && c.model_type != "roberta" && c.model_type != "xlm-roberta")
    config_fail(source, "model_type",
                "unsupported model type \"" + c.model_type + "\" (supported: bert, roberta, xlm-roberta)");
  c.hidden_act = io::json_optional<std::string>(j, "hidden_act", source).value_or("gelu");
  if (c.hidden_act != "gelu" && c.hidden_act != "gelu_new" && c.hidden_act != "gelu_pytorch_tanh" &&
      c.hidden_act != "relu")
    config_fail(source, "hidden_act",
                "unsupported activation \"" + c.hidden_act + "\" (supported: gelu, gelu_new, gelu_pytorch_tanh, relu)");
  std::string pos_type = io::json_optional<std::string>(j, "position_embedding_type", source).value_or("absolute");
  if (pos_type != "absolute")
    config_fail(source, "position_embedding_type", "unsupported \"" + pos_type + "\" (supported: absolute)");
  if (io::json_optional<bool>(j, "is_decoder", source).value_or(false))
    config_fail(source, "is_decoder", "decoder (causal) BERT models are not supported");

  using detail::kMaxDim;
  c.vocab_size = detail::require_dim(j, "vocab_size", source, detail::kMaxVocab);
  c.hidden_size = detail::require_dim(j, "hidden_size", source, kMaxDim);
  c.intermediate_size = detail::require_dim(j, "intermediate_size", source, kMaxDim);
  c.num_hidden_layers = detail::require_dim(j, "num_hidden_layers", source, detail::kMaxLayers);
  c.num_attention_heads = detail::require_dim(j, "num_attention_heads", source, kMaxDim);
  if (c.hidden_size % c.num_attention_heads != 0)
    config_fail(source, "num_attention_heads",
                "must divide hidden_size (" + std::to_string(c.hidden_size) + "), got " +
                    std::to_string(c.num_attention_heads));
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.max_position_embeddings =
      detail::optional_dim(j, "max_position_embeddings", source, detail::kMaxPositions).value_or(512);
  c.type_vocab_size = detail::optional_dim(j, "type_vocab_size", source, kMaxDim).value_or(2);
  c.layer_norm_eps = detail::positive_number(j, "layer_norm_eps", source, 1e-12);
  bool roberta = c.model_type != "bert";
  c.pad_token_id = io::json_optional<int64_t>(j, "pad_token_id", source).value_or(roberta ? 1 : 0);
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
    config_fail(source, "pad_token_id", "must be in [0, vocab_size), got " + std::to_string(c.pad_token_id));
  if (roberta) {
    // RobertaEmbeddings numbers real tokens padding_idx + 1, padding_idx + 2, ...
    c.position_offset = c.pad_token_id + 1;
    if (c.position_offset >= c.max_position_embeddings)
      config_fail(source, "max_position_embeddings",
                  "leaves no positions after the padding offset " + std::to_string(c.position_offset));
  }
  if (auto d = io::json_optional<std::string>(j, "torch_dtype", source)) c.torch_dtype = *d;
  else if (auto d2 = io::json_optional<std::string>(j, "dtype", source)) c.torch_dtype = *d2;
  return c;
}

BertConfig BertConfig::load(const std::string& dir) {
  std::string path = io::join_path(dir, "config.json");
  if (!io::is_file(path)) throw Error(path + ": missing (not a model folder?)");
  return parse(io::read_file(path, size_t{16} << 20), path);
}

int64_t BertConfig::parameter_count() const {
  int64_t h = hidden_size, i = intermediate_size;
  int64_t emb = (vocab_size + max_position_embeddings + type_vocab_size) * h + 2 * h;
  int64_t layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
  return emb + num_hidden_layers * layer;
}

}  // namespace wick
