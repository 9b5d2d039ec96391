// Reading safetensors files: a validated header over a read-only mapping, and tensors that are
// zero-copy views of it whenever no conversion is asked for.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "graph/node.h"
#include "io/safetensors_header.h"
#include "wick/ops.h"
#include "wick/runtime.h"
#include "wick/safetensors.h"

namespace wick {

namespace {

/// A read-only private mapping of a whole file, unmapped when the last tensor over it is gone.
struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::shared_ptr<const Mapping> map_file(const std::string& path) {
  auto m = std::make_shared<Mapping>();
  Fd f;
  // O_NONBLOCK: opening a FIFO put in place of a model file must not hang.
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (f.fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw Error(path + ": cannot stat: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, expected a safetensors file");
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file");
  m->size = static_cast<size_t>(st.st_size);
  if (m->size == 0) return m;  // the header parser reports it as too short
  void* p = ::mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) throw Error(path + ": cannot map the file: " + std::strerror(errno));
  m->addr = p;
  return m;
}

}  // namespace

struct SafetensorsFile::Impl {
  std::string path;
  std::shared_ptr<const void> owner;  // keeps `base` valid (a Mapping or a std::string)
  const char* base = nullptr;
  io::SafetensorsHeader header;

  void parse(uint64_t size) {
    header = io::parse_safetensors_header(std::string_view(base, base ? size : 0), size, path);
  }

  [[noreturn]] void fail(const std::string& what) const { throw Error(path + ": " + what); }

  const SafetensorsTensorInfo* find(const std::string& name) const {
    auto it = std::lower_bound(
        header.tensors.begin(), header.tensors.end(), name,
        [](const SafetensorsTensorInfo& t, const std::string& n) { return t.name < n; });
    return it != header.tensors.end() && it->name == name ? &*it : nullptr;
  }

  const SafetensorsTensorInfo& get(const std::string& name) const {
    if (const SafetensorsTensorInfo* t = find(name)) return *t;
    fail("no tensor named " + io::quote_name(name) + " (the file holds " +
         std::to_string(header.tensors.size()) + ")");
  }

  /// The tensor, possibly unevaluated when a conversion is pending.
  Tensor load_lazy(const std::string& name, std::optional<DType> as) const {
    const SafetensorsTensorInfo& info = get(name);
    const std::string where = "tensor " + io::quote_name(name);
    if (!info.wick_dtype)
      fail(where + ": dtype " + info.dtype +
           " cannot be loaded (wick loads F64, F32, F16, BF16, I64, I32 and BOOL)");
    if (as && !is_floating(*as))
      fail(where + ": cannot load as " + dtype_name(*as) + ": only floating dtypes can be asked for");
    const DType stored = *info.wick_dtype;
    const DType target = as && is_floating(stored) ? *as : stored;
    const char* p = base + header.data_offset + info.begin;
    const size_t bytes = info.end - info.begin;
    if (stored == DType::boolean) {
      // Any other byte would make logical ops disagree with comparisons on the same tensor.
      const char* bad = std::find_if(p, p + bytes, [](char c) { return c != 0 && c != 1; });
      if (bad != p + bytes)
        fail(where + ": BOOL element " + std::to_string(bad - p) + " is byte " +
             std::to_string(static_cast<unsigned char>(*bad)) + ", not 0 or 1");
    }
    Tensor raw;
    if (reinterpret_cast<uintptr_t>(p) % itemsize(stored) == 0) {
      auto n = std::make_shared<detail::Node>();
      n->shape = info.shape;
      n->dtype = stored;
      // The engine never writes into a ready tensor's storage, and never lends external storage
      // to an op's output, so the read-only mapping is safe to hand out.
      n->storage = detail::wrap_external(const_cast<char*>(p), bytes, owner);
      n->strides = contiguous_strides(info.shape);
      n->state.store(detail::NodeState::ready);
      raw = Tensor(std::move(n));
    } else {
      raw = Tensor::from_bytes(p, info.shape, stored);
    }
    return target == stored ? raw : astype(raw, target);
  }
};

SafetensorsFile::SafetensorsFile(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

SafetensorsFile::SafetensorsFile(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  auto mapping = map_file(path);
  impl->base = static_cast<const char*>(mapping->addr);
  impl->owner = mapping;
  impl->parse(mapping->size);
  impl_ = std::move(impl);
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, const std::string& name) {
  auto impl = std::make_shared<Impl>();
  impl->path = name;
  auto data = std::make_shared<const std::string>(std::move(bytes));
  impl->base = data->data();
  impl->owner = data;
  impl->parse(data->size());
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const { return impl_->path; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->header.tensors.size());
  for (const SafetensorsTensorInfo& t : impl_->header.tensors) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return impl_->find(name) != nullptr;
}

const SafetensorsTensorInfo& SafetensorsFile::info(const std::string& name) const {
  return impl_->get(name);
}

const std::vector<SafetensorsTensorInfo>& SafetensorsFile::tensors() const {
  return impl_->header.tensors;
}

const std::map<std::string, std::string>& SafetensorsFile::metadata() const {
  return impl_->header.metadata;
}

Tensor SafetensorsFile::load(const std::string& name, std::optional<DType> as) const {
  Tensor t = impl_->load_lazy(name, as);
  t.eval();
  return t;
}

std::map<std::string, Tensor> SafetensorsFile::load_all(std::optional<DType> as) const {
  std::map<std::string, Tensor> out;
  std::vector<Tensor> pending;
  for (const SafetensorsTensorInfo& info : impl_->header.tensors) {
    Tensor t = impl_->load_lazy(info.name, as);
    if (!t.is_evaluated()) pending.push_back(t);
    out.emplace(info.name, std::move(t));
  }
  // All conversions as one submission.
  if (!pending.empty()) eval(pending);
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::optional<DType> as) {
  return SafetensorsFile(path).load_all(as);
}

}  // namespace wick
