#pragma once
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wick/device.h"
#include "wick/dtype.h"
#include "wick/error.h"
#include "wick/shape.h"

namespace wick {

namespace detail {
struct Node;
}
class Future;

/// A cheap, copyable handle to a node of the lazy graph. Building an op never computes; the
/// value exists once the tensor is evaluated (explicitly, or implicitly by reading data).
/// Values are immutable: an evaluated tensor never changes.
class Tensor {
 public:
  /// A null handle ("no tensor"), e.g. for an absent optional operand.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::Node> node) : node_(std::move(node)) {}

  /// Copies host data (row-major) into a new evaluated tensor.
  template <class T>
  static Tensor from_data(const T* data, const Shape& shape) {
    return from_bytes(data, shape, dtype_of_v<T>);
  }
  template <class T>
  static Tensor from_vector(const std::vector<T>& data, const Shape& shape) {
    check_count(data.size(), shape);
    return from_bytes(data.data(), shape, dtype_of_v<T>);
  }
  static Tensor from_vector(const std::vector<bool>& data, const Shape& shape);
  static Tensor from_bytes(const void* data, const Shape& shape, DType dtype);

  bool defined() const { return node_ != nullptr; }
  explicit operator bool() const { return defined(); }

  const Shape& shape() const;
  int64_t shape(int axis) const;
  int ndim() const { return static_cast<int>(shape().size()); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(dtype()); }
  DType dtype() const;
  Device device() const;

  /// True once the value has been computed (or the tensor was made from host data).
  bool is_evaluated() const;
  /// Evaluates this tensor and waits for it; returns *this for chaining.
  const Tensor& eval() const;
  /// Hands the evaluation to the stream and returns at once.
  Future eval_async() const;

  /// Strides and element offset of the evaluated value (views share storage with their source).
  const Strides& strides() const;
  int64_t offset() const;
  bool is_contiguous() const;

  /// Evaluates (if needed) a one-element tensor and converts its value to T.
  template <class T>
  T item() const {
    T out{};
    read(&out, dtype_of_v<T>, 1, true);
    return out;
  }
  /// Evaluates (if needed) and copies all elements, row-major, converted to T.
  template <class T>
  std::vector<T> to_vector() const {
    std::vector<T> out(static_cast<size_t>(numel()));
    read(out.data(), dtype_of_v<T>, out.size(), false);
    return out;
  }
  /// Evaluates (if needed) and returns a pointer to the first element. T must be the dtype's
  /// element type; use strides() to walk a non-contiguous view (or call contiguous() first).
  template <class T>
  const T* data() const {
    return static_cast<const T*>(raw_data(dtype_of_v<T>));
  }

  /// NumPy-like text: shape, dtype and values (long axes shortened with "...").
  std::string to_string() const;

  detail::Node* node() const { return node_.get(); }
  const std::shared_ptr<detail::Node>& node_ptr() const { return node_; }
  /// Identity comparison of handles (not element-wise).
  bool same(const Tensor& other) const { return node_ == other.node_; }

 private:
  static void check_count(size_t n, const Shape& shape);
  void read(void* dst, DType dst_type, size_t count, bool scalar) const;
  const void* raw_data(DType expected) const;

  std::shared_ptr<detail::Node> node_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

template <>
inline std::vector<bool> Tensor::to_vector<bool>() const {
  std::vector<uint8_t> bytes(static_cast<size_t>(numel()));
  read(bytes.data(), DType::boolean, bytes.size(), false);
  return std::vector<bool>(bytes.begin(), bytes.end());
}

}  // namespace wick
