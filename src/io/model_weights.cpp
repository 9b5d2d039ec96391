// Loading the weights of a Hugging Face model folder: one model.safetensors, or shards listed by
// model.safetensors.index.json.
#include <map>
#include <set>

#include "io/files.h"
#include "io/json.h"
#include "io/safetensors_header.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

/// The shard files named by the index's weight_map, each with the tensor names it must hold.
std::map<std::string, std::vector<std::string>> read_index(const std::string& index_path) {
  // An index is small (one line per tensor); 64 MB is far beyond any real one.
  io::Json index = io::parse_json_strict(io::read_file(index_path, size_t(64) << 20), index_path);
  if (!index.is_object())
    throw Error(index_path + ": expected a JSON object, got " + io::json_type_name(index));
  auto it = index.find("weight_map");
  if (it == index.end()) throw Error(index_path + ": missing field \"weight_map\"");
  if (!it->is_object())
    throw Error(index_path + ": weight_map: expected an object, got " + io::json_type_name(*it));
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, file] : it->items()) {
    const std::string where = index_path + ": weight_map: " + io::quote_name(name);
    if (!file.is_string())
      throw Error(where + ": expected a file name, got " + io::json_type_name(file));
    const std::string& shard = file.get_ref<const std::string&>();
    // A shard is a plain file name in the folder: nothing that could reach elsewhere.
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
      throw Error(where + ": shard " + io::quote_name(shard) +
                  " is not a plain file name in the model folder");
    shards[shard].push_back(name);
  }
  if (shards.empty()) throw Error(index_path + ": weight_map is empty");
  return shards;
}

std::map<std::string, Tensor> load_sharded(const std::string& dir, const std::string& index_path,
                                           std::optional<DType> as) {
  std::map<std::string, Tensor> out;
  std::map<std::string, std::string> origin;  // tensor name -> shard it came from
  for (const auto& [shard, names] : read_index(index_path)) {
    const std::string shard_path = io::join_path(dir, shard);
    if (!io::is_file(shard_path))
      throw Error(index_path + ": shard " + io::quote_name(shard) + " does not exist (" +
                  shard_path + ")");
    SafetensorsFile file(shard_path);
    for (const std::string& name : names)
      if (!file.contains(name))
        throw Error(shard_path + ": has no tensor " + io::quote_name(name) + ", which " +
                    index_path + " places in it");
    // Names the index does not list are loaded too (as transformers does), but a name in two
    // shards is ambiguous.
    for (const SafetensorsTensorInfo& t : file.tensors()) {
      auto [it, fresh] = origin.emplace(t.name, shard);
      if (!fresh)
        throw Error(shard_path + ": tensor " + io::quote_name(t.name) + " is also in shard " +
                    io::quote_name(it->second));
    }
    out.merge(file.load_all(as));
  }
  return out;
}

}  // namespace

std::map<std::string, Tensor> load_model_weights(const std::string& path,
                                                 std::optional<DType> as) {
  if (io::is_file(path)) return load_safetensors(path, as);
  if (!io::is_directory(path))
    throw Error(path + ": no such model folder or safetensors file");
  const std::string index = io::join_path(path, "model.safetensors.index.json");
  if (io::is_file(index)) return load_sharded(path, index, as);
  const std::string single = io::join_path(path, "model.safetensors");
  if (io::is_file(single)) return load_safetensors(single, as);
  throw Error(path + ": holds neither model.safetensors nor model.safetensors.index.json");
}

}  // namespace wick
