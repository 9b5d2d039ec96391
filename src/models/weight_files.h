#pragma once
// Which file of a model folder holds each tensor, for error messages (shared by the loaders).
#include <map>
#include <string>

#include "io/files.h"
#include "io/json.h"

namespace wick::detail {

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

}  // namespace wick::detail
