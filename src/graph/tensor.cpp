#include "wick/tensor.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "graph/node.h"
#include "wick/memory.h"
#include "wick/ops.h"
#include "wick/runtime.h"

namespace wick {

using detail::Node;

namespace {
Node& checked(const std::shared_ptr<Node>& n) {
  if (!n) throw Error("operation on a null tensor");
  return *n;
}
}  // namespace

void Tensor::check_count(size_t n, const Shape& shape) {
  for (int64_t d : shape)
    if (d < 0) throw Error("from_vector: negative dimension in shape " + shape_str(shape));
  if (static_cast<int64_t>(n) != wick::numel(shape)) {
    throw Error("from_vector: " + std::to_string(n) + " values do not fill shape " + shape_str(shape));
  }
}

Tensor Tensor::from_bytes(const void* data, const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) throw Error("from_data: negative dimension in shape " + shape_str(shape));
  auto n = std::make_shared<Node>();
  n->shape = shape;
  n->dtype = dtype;
  size_t bytes = wick::numel(shape) * itemsize(dtype);
  n->storage = detail::allocate(std::max<size_t>(bytes, 1));
  if (bytes) std::memcpy(n->storage->ptr, data, bytes);
  n->strides = contiguous_strides(shape);
  n->state.store(detail::NodeState::ready);
  return Tensor(std::move(n));
}

Tensor pin_memory(const Tensor& t) {
  if (!t.defined()) throw Error("pin_memory: null tensor");
  if (t.device().type != Device::Type::cpu)
    throw Error("pin_memory: the tensor is on " + t.device().str() +
                "; only host tensors are pinned");
  Tensor d = contiguous(t);
  d.eval();
  const size_t bytes = wick::numel(d.shape()) * itemsize(d.dtype());
  std::shared_ptr<detail::Storage> storage = detail::allocate_pinned(std::max<size_t>(bytes, 1));
  if (!storage) return d;
  if (bytes) std::memcpy(storage->ptr, d.node()->raw(), bytes);
  auto n = std::make_shared<Node>();
  n->shape = d.shape();
  n->dtype = d.dtype();
  n->storage = std::move(storage);
  n->strides = contiguous_strides(n->shape);
  n->state.store(detail::NodeState::ready);
  return Tensor(std::move(n));
}

bool is_pinned(const Tensor& t) {
  return t.defined() && t.is_evaluated() && t.node()->storage && t.node()->storage->pinned;
}

Tensor Tensor::from_vector(const std::vector<bool>& data, const Shape& shape) {
  check_count(data.size(), shape);
  std::vector<uint8_t> bytes(data.begin(), data.end());
  return from_bytes(bytes.data(), shape, DType::boolean);
}

const Shape& Tensor::shape() const { return checked(node_).shape; }
int64_t Tensor::shape(int axis) const {
  return shape()[normalize_axis(axis, ndim(), "shape")];
}
int64_t Tensor::numel() const { return wick::numel(shape()); }
DType Tensor::dtype() const { return checked(node_).dtype; }
Device Tensor::device() const { return checked(node_).device; }

bool Tensor::is_evaluated() const { return checked(node_).ready(); }

const Tensor& Tensor::eval() const {
  wick::eval({*this});
  return *this;
}

Future Tensor::eval_async() const { return wick::eval_async({*this}); }

const Strides& Tensor::strides() const {
  eval();
  return node_->strides;
}
int64_t Tensor::offset() const {
  eval();
  return node_->offset;
}
bool Tensor::is_contiguous() const {
  eval();
  return node_->contiguous();
}

void Tensor::read(void* dst, DType dst_type, size_t count, bool scalar) const {
  if (scalar && numel() != 1) {
    throw Error("item: tensor of shape " + shape_str(shape()) + " has " + std::to_string(numel()) +
                " elements, not 1");
  }
  // Conversion and densification are ordinary ops, so read-back reuses the kernels.
  Tensor src = *this;
  if (dtype() != dst_type) src = astype(src, dst_type);
  src = contiguous(src);
  if (src.device().type != Device::Type::cpu) src = to(src, Device::cpu());
  src.eval();
  if (count) std::memcpy(dst, src.node()->raw(), count * itemsize(dst_type));
}

const void* Tensor::raw_data(DType expected) const {
  if (dtype() != expected) {
    throw Error(std::string("data: tensor has dtype ") + dtype_name(dtype()) + ", not " +
                dtype_name(expected));
  }
  if (device().type != Device::Type::cpu)
    throw Error("data: the tensor is on " + device().str() + "; read it with to_vector/item, or move it with to(x, Device::cpu())");
  eval();
  return node_->raw();
}

namespace {

void format_value(std::ostream& os, double v, DType t) {
  if (t == DType::boolean) {
    os << (v != 0 ? "true" : "false");
  } else if (is_integral(t)) {
    os << static_cast<int64_t>(v);
  } else {
    std::ostringstream s;
    s.precision(t == DType::f64 ? 10 : 6);
    s << v;
    os << s.str();
  }
}

// Prints nested brackets; axes longer than 6 show the first and last 3 entries.
void format_axis(std::ostream& os, const std::vector<double>& v, const Shape& shape,
                 const Strides& st, size_t axis, int64_t base, DType t) {
  if (axis == shape.size()) {
    format_value(os, v[base], t);
    return;
  }
  os << "[";
  int64_t n = shape[axis];
  for (int64_t i = 0; i < n; ++i) {
    if (n > 6 && i == 3) {
      os << (axis + 1 == shape.size() ? "..., " : "...,\n ");
      i = n - 3;
    }
    format_axis(os, v, shape, st, axis + 1, base + i * st[axis], t);
    if (i + 1 < n) os << (axis + 1 == shape.size() ? ", " : ",\n ");
  }
  os << "]";
}

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(null)";
  std::ostringstream os;
  os << "tensor(";
  std::vector<double> v = to_vector<double>();
  format_axis(os, v, shape(), contiguous_strides(shape()), 0, 0, dtype());
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace wick
