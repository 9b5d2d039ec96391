// Fuzz target: the safetensors header parser on arbitrary bytes, then the whole open-and-load path
// over the same bytes held in memory. Anything but success or a wick::Error is a finding: a crash,
// a sanitizer report, another exception type, or a parsed header that breaks its own guarantees.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "graph/node.h"
#include "io/safetensors_header.h"
#include "wick/safetensors.h"

namespace {

/// The guarantees readers rely on; a violation aborts so that libFuzzer records the input.
void check_invariants(const wick::io::SafetensorsHeader& h, size_t size) {
  if (h.data_offset > size || h.data_offset + h.data_size != size) std::abort();
  const wick::SafetensorsTensorInfo* prev = nullptr;
  for (const auto& t : h.tensors) {
    if (prev && !(prev->name < t.name)) std::abort();  // sorted and unique
    prev = &t;
    size_t item = wick::io::safetensors_itemsize(t.dtype);
    if (item == 0 || t.begin > t.end || t.end > h.data_size) std::abort();
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      numel *= static_cast<uint64_t>(d);  // cannot wrap: the parser bounded the product
    }
    if (t.end - t.begin != numel * item) std::abort();
  }
  for (const auto& a : h.tensors)
    for (const auto& b : h.tensors)
      if (&a != &b && a.begin < a.end && b.begin < b.end && a.begin < b.end && b.begin < a.end)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    check_invariants(wick::io::parse_safetensors_header(bytes, size, "fuzz"), size);
  } catch (const wick::Error&) {
  }

  try {
    // A copy the size of the input: ASan then reports any read past the file's bytes.
    auto file = wick::SafetensorsFile::from_bytes(std::string(bytes), "fuzz");
    for (const auto& info : file.tensors()) {
      try {
        wick::Tensor t = file.load(info.name);
        // Touch every byte the tensor claims.
        const auto* p = static_cast<const unsigned char*>(t.node()->raw());
        unsigned sum = 0;
        for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
        if (t.nbytes() != info.end - info.begin) std::abort();
        // Kept observable so the reads above cannot be optimised away.
        asm volatile("" : : "r"(sum) : "memory");
        // The conversion path, for small floating tensors.
        if (t.numel() <= 64 && wick::is_floating(t.dtype()))
          (void)file.load(info.name, wick::DType::f32).to_vector<float>();
      } catch (const wick::Error&) {
        // Unsupported dtypes and BOOL bytes other than 0/1 are clean rejections.
      }
    }
  } catch (const wick::Error&) {
  }
  return 0;
}
