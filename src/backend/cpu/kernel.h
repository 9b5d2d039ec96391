#pragma once
// Shared helpers of the CPU kernels: dtype dispatch, output allocation (with buffer donation),
// strided iteration and threading.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "backend/output.h"
#include "graph/node.h"
#include "graph/op_codes.h"
#include "wick/error.h"

namespace wick::cpu {

using detail::Node;

template <class T>
inline constexpr bool is_half_v = std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

/// The type kernels compute in: f16/bf16 widen to f32, bool to int for arithmetic.
template <class T>
using compute_t = std::conditional_t<is_half_v<T>, float, T>;

template <class T>
[[gnu::always_inline]] inline compute_t<T> load(const T* p) {
  if constexpr (is_half_v<T>) return static_cast<float>(*p);
  else return *p;
}
template <class T, class V>
[[gnu::always_inline]] inline void store(T* p, V v) {
  if constexpr (is_half_v<T>) *p = T(static_cast<float>(v));
  else *p = static_cast<T>(v);
}

/// Calls f.template operator()<T>() with the C++ element type of `t`.
template <class F>
decltype(auto) dispatch(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::f16: return f.template operator()<float16>();
    case DType::bf16: return f.template operator()<bfloat16>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::boolean: return f.template operator()<bool>();
  }
  throw Error("unsupported dtype");
}

/// Like dispatch, for kernels that only make sense on floating types.
template <class F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::f16: return f.template operator()<float16>();
    case DType::bf16: return f.template operator()<bfloat16>();
    default: throw Error(std::string(op) + ": floating dtype expected, got " + dtype_name(t));
  }
}

/// Kernels whose builders cast the input to the output dtype check that contract here.
inline void require_same_dtype(const char* op, const Node& x, const Node& out) {
  if (x.dtype != out.dtype)
    throw Error(std::string(op) + ": input dtype " + dtype_name(x.dtype) + " != output " +
                dtype_name(out.dtype));
}

using detail::alloc_output;
using detail::alloc_output_donating;
using detail::aligned_strides;
using detail::make_view;

/// Per-thread grow-only f32 scratch, one buffer per slot so a kernel can hold several at once.
enum ScratchSlot { kGemmScratchpad, kGemmTranspose, kAttnScores, kAttnOut, kAttnStage, kRowBuffer, kScratchSlots };
float* thread_scratch(ScratchSlot slot, size_t n);

/// Element offset of row r (row-major over all axes but the last) of a strided node; one
/// multiplication when the rows are evenly spaced.
struct RowOffsets {
  Shape lead;
  Strides st;
  int64_t uniform = 0;  // stride between consecutive rows when it is one number, else -1

  explicit RowOffsets(const Node& n)
      : lead(n.shape.begin(), n.shape.end() - 1), st(n.strides.begin(), n.strides.end() - 1) {
    int64_t expect = -1;
    for (size_t d = lead.size(); d-- > 0;) {
      if (lead[d] == 1) continue;
      if (expect < 0) {
        uniform = st[d];
      } else if (st[d] != expect) {
        uniform = -1;
        break;
      }
      expect = st[d] * lead[d];
    }
  }
  int64_t operator()(int64_t r) const {
    if (uniform >= 0) return r * uniform;
    int64_t off = 0;
    for (size_t d = lead.size(); d-- > 0;) {
      off += (r % lead[d]) * st[d];
      r /= lead[d];
    }
    return off;
  }
};

/// Element offset of the `linear`-th element (row-major) of a view with this shape and strides.
inline int64_t linear_offset(int64_t linear, const Shape& shape, const Strides& strides) {
  int64_t off = 0;
  for (size_t d = shape.size(); d-- > 0;) {
    off += (linear % shape[d]) * strides[d];
    linear /= shape[d];
  }
  return off;
}

/// x = op(x), elementwise over x's own elements (elementwise.cpp).
void unary_in_place(detail::UnaryOp op, Node& x);

/// Runs f(begin, end) over [0, n) split across the OpenMP threads when n*cost is large enough
/// to pay for the fork (cost: rough work units per item). f must not throw: an exception
/// cannot leave an OpenMP region, so kernels validate their data before parallel work.
template <class F>
void parallel_for(int64_t n, int64_t cost_per_item, F&& f) {
  constexpr int64_t kMinWork = 1 << 15;
  int threads = omp_get_max_threads();
  if (threads <= 1 || n * cost_per_item < kMinWork || n < 2) {
    f(int64_t{0}, n);
    return;
  }
  int64_t chunks = std::min<int64_t>(threads, n);
#pragma omp parallel for num_threads(chunks) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    f(b, e);
  }
}

/// While alive, OpenMP regions started from this thread (ours and oneDNN's) use one thread.
/// For small work the fork costs more than it saves, and the woken pool thread keeps spinning
/// afterwards on the core the host thread needs to build the next graph.
class SerialScope {
 public:
  explicit SerialScope(bool serial) : prev_(serial ? omp_get_max_threads() : 0) {
    if (serial) omp_set_num_threads(1);
  }
  ~SerialScope() {
    if (prev_) omp_set_num_threads(prev_);
  }
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  int prev_;
};

/// Iterates an n-d index space given by `shape` for K operands with their strides (in elements),
/// after merging axes that are contiguous for every operand. Calls
/// inner(offsets[K], inner_strides[K], inner_len) for each run of the innermost merged axis,
/// over the outer rows [row_begin, row_end).
template <size_t K>
struct StridedLoop {
  Shape shape;                       // merged shape
  std::array<Strides, K> strides;    // merged strides
  int64_t inner = 1;                 // length of the last merged axis
  int64_t rows = 1;                  // product of the outer axes

  StridedLoop(const Shape& s, const std::array<Strides, K>& st) {
    // Drop size-1 axes, then merge neighbours when every operand is contiguous across them.
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;
      bool merge = !shape.empty();
      for (size_t k = 0; k < K && merge; ++k) merge = strides[k].back() == st[k][d] * s[d];
      if (merge) {
        shape.back() *= s[d];
        for (size_t k = 0; k < K; ++k) strides[k].back() = st[k][d];
      } else {
        shape.push_back(s[d]);
        for (size_t k = 0; k < K; ++k) strides[k].push_back(st[k][d]);
      }
    }
    if (shape.empty()) {
      shape.push_back(1);
      for (size_t k = 0; k < K; ++k) strides[k].push_back(0);
    }
    inner = shape.back();
    rows = 1;
    for (size_t d = 0; d + 1 < shape.size(); ++d) rows *= shape[d];
  }

  /// Element offsets of row `r` for each operand.
  std::array<int64_t, K> row_offsets(int64_t r) const {
    std::array<int64_t, K> off{};
    for (size_t d = shape.size() - 1; d-- > 0;) {
      int64_t i = r % shape[d];
      r /= shape[d];
      for (size_t k = 0; k < K; ++k) off[k] += i * strides[k][d];
    }
    return off;
  }

  template <class F>
  void run(F&& inner_fn, int64_t cost_per_item = 1) const {
    std::array<int64_t, K> inner_strides;
    for (size_t k = 0; k < K; ++k) inner_strides[k] = strides[k].back();
    parallel_for(rows, inner * cost_per_item, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) inner_fn(row_offsets(r), inner_strides, inner);
    });
  }
};

}  // namespace wick::cpu
