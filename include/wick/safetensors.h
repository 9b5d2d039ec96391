#pragma once
// Reading and writing safetensors files (the Hugging Face weight format) and loading the weights
// of a model folder, single-file or sharded. Files are untrusted: every header is validated before
// use, and every error names the file and the problem.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wick/dtype.h"
#include "wick/shape.h"
#include "wick/tensor.h"

namespace wick {

/// What a safetensors header says about one tensor.
struct SafetensorsTensorInfo {
  std::string name;
  /// The dtype as stored: "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
  /// "F8_E4M3" or "F8_E5M2".
  std::string dtype;
  /// The matching wick dtype; nullopt for I16, I8, U8 and the F8 types, which wick cannot load.
  std::optional<DType> wick_dtype;
  Shape shape;
  /// Byte range [begin, end) within the data block (which starts after the header).
  uint64_t begin = 0;
  uint64_t end = 0;
};

/// An open, validated safetensors file, memory-mapped read-only. Copies are cheap and share the
/// mapping; tensors loaded without conversion point into it (zero-copy) and keep it alive, so
/// the SafetensorsFile may be dropped before them. The file must not be truncated or rewritten in
/// place while mapped (wick itself only ever replaces files by rename). Thread-safe.
class SafetensorsFile {
 public:
  /// Opens and validates `path`; throws wick::Error naming the file on any problem.
  explicit SafetensorsFile(const std::string& path);
  /// The same over bytes held in memory; `name` stands for the file in messages.
  static SafetensorsFile from_bytes(std::string bytes, const std::string& name);

  /// The path (or name) given when opening.
  const std::string& path() const;
  /// Tensor names, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  /// Header entry of `name`; throws when there is no such tensor.
  const SafetensorsTensorInfo& info(const std::string& name) const;
  /// All header entries, sorted by name.
  const std::vector<SafetensorsTensorInfo>& tensors() const;
  /// The `__metadata__` map (empty when absent).
  const std::map<std::string, std::string>& metadata() const;

  /// Loads one tensor as an evaluated CPU tensor. Without `as`, or when `as` is the stored type,
  /// the tensor is a zero-copy view of the mapping (copied instead when the data is not aligned to
  /// its element size). `as` must be a floating dtype: floating tensors (F64/F32/F16/BF16) are
  /// converted to it; integer and BOOL tensors are returned as stored. I16, I8, U8 and F8 tensors
  /// cannot be loaded (wick::Error); BOOL bytes other than 0 and 1 are an error.
  Tensor load(const std::string& name, std::optional<DType> as = {}) const;
  /// Every tensor, as load() gives them.
  std::map<std::string, Tensor> load_all(std::optional<DType> as = {}) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

/// All tensors of one safetensors file (see SafetensorsFile::load for `as`).
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::optional<DType> as = {});

/// Writes `tensors` (evaluating them; views are written as their row-major values) and
/// `metadata` to `path` atomically: a failure leaves no partial file and no temporary file.
/// Tensor data is laid out by element size then name, so every tensor of the written file is
/// aligned for zero-copy loading. Names must be valid UTF-8 and not "__metadata__".
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// The weights of a Hugging Face model: `path` is a folder holding `model.safetensors` or a
/// sharded set listed by `model.safetensors.index.json` (`weight_map`: name -> shard file), or a
/// single .safetensors file. Shards must lie in the folder, hold the names the index assigns
/// them, and not repeat a name. `as` as for SafetensorsFile::load.
std::map<std::string, Tensor> load_model_weights(const std::string& path,
                                                 std::optional<DType> as = {});

}  // namespace wick
