// CausalLM::load: config.json plus safetensors weights, every tensor checked against the config.
#include "io/files.h"
#include "io/json.h"
#include "wick/model.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

/// Which file of `dir` holds each tensor, for messages: the index's weight_map, else the single
/// model.safetensors.
class WeightFiles {
 public:
  explicit WeightFiles(const std::string& dir) : dir_(dir) {
    std::string index = io::join_path(dir, "model.safetensors.index.json");
    if (!io::is_file(index)) {
      default_ = io::join_path(dir, "model.safetensors");
      return;
    }
    default_ = index;
    try {
      io::Json j = io::parse_json(io::read_file(index, size_t(64) << 20), index);
      for (const auto& [name, file] : j.at("weight_map").items())
        if (file.is_string()) map_[name] = io::join_path(dir, file.get<std::string>());
    } catch (const std::exception&) {
      // load_model_weights has validated the index already; messages fall back to its name.
    }
  }
  const std::string& of(const std::string& name) const {
    auto it = map_.find(name);
    return it == map_.end() ? default_ : it->second;
  }
  const std::string& main() const { return default_; }

 private:
  std::string dir_, default_;
  std::map<std::string, std::string> map_;
};

}  // namespace

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
