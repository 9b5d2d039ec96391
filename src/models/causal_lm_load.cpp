// CausalLM::load: config.json plus safetensors weights, every tensor checked against the config.
#include "io/files.h"
#include "io/json.h"
#include "models/weight_files.h"
#include "wick/model.h"
#include "wick/safetensors.h"

namespace wick {

using detail::WeightFiles;

std::shared_ptr<CausalLM> CausalLM::load(const std::string& dir, DType dtype) {
  if (!is_floating(dtype)) throw Error(std::string("CausalLM::load: floating dtype expected, got ") + dtype_name(dtype));
  ModelConfig config = ModelConfig::load(dir);
  auto model = std::make_shared<CausalLM>(config, dtype);
  std::map<std::string, Tensor> weights = load_model_weights(dir, dtype);
  WeightFiles files(dir);
  std::map<std::string, Tensor> expected = model->parameters();
  std::map<std::string, Tensor> values;
  for (const auto& [name, t] : weights) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      // Tied checkpoints sometimes still carry the head; old ones carry RoPE buffers.
      if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
      if (name.ends_with(".rotary_emb.inv_freq")) continue;
      throw Error(files.of(name) + ": unexpected tensor \"" + name + "\" (not part of this " + config.model_type +
                  " model as config.json describes it)");
    }
    if (t.shape() != it->second.shape())
      throw Error(files.of(name) + ": tensor \"" + name + "\" has shape " + shape_str(t.shape()) +
                  " but config.json implies " + shape_str(it->second.shape()));
    if (t.dtype() != dtype)
      throw Error(files.of(name) + ": tensor \"" + name + "\" is " + dtype_name(t.dtype()) +
                  ", not a floating-point weight");
    values.emplace(name, t);
  }
  for (const auto& [name, t] : expected)
    if (!values.count(name))
      throw Error(files.main() + ": missing weight \"" + name + "\" (shape " + shape_str(t.shape()) + ")");
  model->update(values);
  return model;
}

}  // namespace wick
