// BertModel::load: config.json plus safetensors weights under any of the prefixes that
// transformers' checkpoints use, every tensor checked against the config.
#include "io/files.h"
#include "models/weight_files.h"
#include "wick/encoder.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

/// The prefix in front of "embeddings.word_embeddings.weight" ("" for a bare BertModel).
std::string find_prefix(const std::map<std::string, Tensor>& weights) {
  for (const char* p : {"", "bert.", "roberta.", "model."})
    if (weights.count(std::string(p) + "embeddings.word_embeddings.weight")) return p;
  return "";
}

/// Tensors of task heads and buffers that a checkpoint may carry besides the encoder.
bool ignored(const std::string& name) {
  return name.starts_with("pooler.") || name.starts_with("cls.") || name.starts_with("lm_head.") ||
         name.starts_with("classifier.") || name.starts_with("qa_outputs.") ||
         name == "embeddings.position_ids" || name == "embeddings.token_type_ids";
}

/// Old TensorFlow-converted checkpoints name LayerNorm parameters gamma and beta.
std::string modern_name(const std::string& name) {
  if (name.ends_with("LayerNorm.gamma")) return name.substr(0, name.size() - 5) + "weight";
  if (name.ends_with("LayerNorm.beta")) return name.substr(0, name.size() - 4) + "bias";
  return name;
}

}  // namespace

std::shared_ptr<BertModel> BertModel::load(const std::string& dir, DType dtype) {
  if (!is_floating(dtype)) throw Error(std::string("BertModel::load: floating dtype expected, got ") + dtype_name(dtype));
  BertConfig config = BertConfig::load(dir);
  auto model = std::make_shared<BertModel>(config, dtype);
  std::map<std::string, Tensor> weights = load_model_weights(dir, dtype);
  detail::WeightFiles files(dir);
  const std::string prefix = find_prefix(weights);
  std::map<std::string, Tensor> expected = model->parameters();
  std::map<std::string, Tensor> values;
  for (const auto& [stored, t] : weights) {
    if (!stored.starts_with(prefix)) {
      if (ignored(stored)) continue;
      throw Error(files.of(stored) + ": unexpected tensor \"" + stored + "\" (the encoder's weights are under \"" +
                  prefix + "\")");
    }
    std::string name = modern_name(stored.substr(prefix.size()));
    if (ignored(name)) continue;
    auto it = expected.find(name);
    if (it == expected.end())
      throw Error(files.of(stored) + ": unexpected tensor \"" + stored + "\" (not part of this " + config.model_type +
                  " model as config.json describes it)");
    if (t.shape() != it->second.shape())
      throw Error(files.of(stored) + ": tensor \"" + stored + "\" has shape " + shape_str(t.shape()) +
                  " but config.json implies " + shape_str(it->second.shape()));
    if (t.dtype() != dtype)
      throw Error(files.of(stored) + ": tensor \"" + stored + "\" is " + dtype_name(t.dtype()) +
                  ", not a floating-point weight");
    if (!values.emplace(name, t).second)
      throw Error(files.of(stored) + ": tensor \"" + stored + "\" given twice (gamma/beta and weight/bias names)");
  }
  for (const auto& [name, t] : expected)
    if (!values.count(name))
      throw Error(files.main() + ": missing weight \"" + prefix + name + "\" (shape " + shape_str(t.shape()) + ")");
  model->update(values);
  model->fuse_qkv();
  return model;
}

}  // namespace wick
