// Writing safetensors files: header, then each tensor's row-major bytes, atomically.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "graph/node.h"
#include "io/files.h"
#include "io/json.h"
#include "io/safetensors_header.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

struct Entry {
  const std::string* name;
  Tensor tensor;
  uint64_t begin = 0, end = 0;
};

void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n)
    throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Entry> entries;
  std::vector<Tensor> roots;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw Error(path + ": \"__metadata__\" is reserved and cannot name a tensor");
    if (!t.defined()) throw Error(path + ": tensor " + io::quote_name(name) + " is a null Tensor");
    entries.push_back({&name, t});
    roots.push_back(t);
  }
  eval(roots);

  // Wider elements first (then by name), as the reference writer does: with the data block
  // 8-byte aligned, every tensor then starts aligned to its element size and loads zero-copy.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return itemsize(a.tensor.dtype()) > itemsize(b.tensor.dtype());
  });
  io::Json header = io::Json::object();
  uint64_t offset = 0;
  for (Entry& e : entries) {
    e.begin = offset;
    e.end = offset += e.tensor.nbytes();
    header[*e.name] = {{"dtype", io::safetensors_dtype_name(e.tensor.dtype())},
                       {"shape", e.tensor.shape()},
                       {"data_offsets", {e.begin, e.end}}};
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const io::Json::type_error&) {
    throw Error(path + ": tensor names and metadata must be valid UTF-8");
  }
  // Spaces are JSON whitespace, so padding keeps the header valid while aligning the data.
  text.append((8 - text.size() % 8) % 8, ' ');

  io::write_file_atomic(path, [&](std::FILE* f) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i));
    write_bytes(f, len, 8, path);
    write_bytes(f, text.data(), text.size(), path);
    for (const Entry& e : entries) {
      // Views (transposes, slices, broadcasts) are densified one at a time, so at most one extra
      // copy is alive while writing.
      Tensor dense = e.tensor.is_contiguous() ? e.tensor : contiguous(e.tensor);
      if (dense.device().type != Device::Type::cpu) dense = to(dense, Device::cpu());
      dense.eval();
      write_bytes(f, dense.node()->raw(), e.end - e.begin, path);
    }
  });
}

}  // namespace wick
