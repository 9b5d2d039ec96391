#pragma once
// Helpers of the primitives' CUDA implementations (host side): iteration spaces over nodes,
// dense copies of inputs a kernel needs dense, and output allocation.
#include <array>
#include <memory>
#include <span>

#include "backend/cuda/context.h"
#include "backend/cuda/launch.h"
#include "backend/output.h"
#include "graph/primitives.h"

namespace wick::cuda {

using detail::Node;

/// An iteration space over `shape` and each operand's strides (aligned to it), with size-1 axes
/// dropped and neighbours merged where every operand is contiguous across them.
template <size_t K>
struct Spaced {
  Space space;
  std::array<Walk, K> walks;
};

template <size_t K>
Spaced<K> make_space(const Shape& shape, const std::array<Strides, K>& strides) {
  Spaced<K> r;
  int nd = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (size_t k = 0; k < K && merge; ++k)
      merge = r.walks[k].s[nd - 1] == strides[k][d] * shape[d];
    if (merge) {
      r.space.shape[nd - 1] *= shape[d];
      for (size_t k = 0; k < K; ++k) r.walks[k].s[nd - 1] = strides[k][d];
      continue;
    }
    if (nd == kMaxDims)
      throw Error("cuda: more than 8 axes that cannot be merged: " + shape_str(shape));
    r.space.shape[nd] = shape[d];
    for (size_t k = 0; k < K; ++k) r.walks[k].s[nd] = strides[k][d];
    ++nd;
  }
  r.space.nd = nd;
  r.space.numel = numel(shape);
  return r;
}

/// Activates the node's device and returns its context.
inline Context& on(const Node& n) {
  return activate(n.device.index);
}

/// Whether no kernel of the current launch unit wrote n's storage (context.h), so that a kernel
/// may read it before its wait_for_inputs().
inline bool untouched(const Node& n) {
  return n.storage && n.storage->written_unit.load(std::memory_order_acquire) != current_unit();
}

/// Notes that the kernels just queued wrote n's storage (an output, or an input written in
/// place): kernels after them in this launch unit must not read it before their wait.
inline void mark_written(const Node& n) {
  if (!n.storage) return;
  n.storage->written_lane.store(detail::this_lane, std::memory_order_relaxed);
  n.storage->written_unit.store(current_unit(), std::memory_order_release);
}

/// A dense row-major copy of `n` when it is not one already; keeps the copy alive with `hold`.
/// (The copy's buffer returns to the cache when `hold` dies; any later user is a kernel queued
/// after this one on the same stream.)
const void* dense(const Node& n, std::shared_ptr<detail::Storage>& hold);

/// A [batch] × [rows, cols] operand as cuBLASLt sees it: `col` means element (r, c) sits at
/// r + c·ld (column-major), else at r·ld + c.
struct Mat {
  const void* ptr = nullptr;
  bool col = false;
  int64_t ld = 0, batch_stride = 0;
  std::shared_ptr<detail::Storage> hold;
  bool untouched = false;  // the node's own memory, which no kernel of this launch unit wrote
};

/// The last two axes of `n` as a [rows, cols] matrix over `batch` matrices (copied dense when
/// its strides do not fit cuBLASLt).
Mat as_mat(const Node& n, int64_t rows, int64_t cols, int64_t batch);
Mat transposed(Mat m);

/// out[b] (row-major M×N, leading dimension N, batch stride M·N) = alpha·A[b]·B[b] + beta·out[b]
/// on cuBLASLt; A and B have dtype t, out has out_t (boolean: t as well).
/// `c`, when given, is read instead of out for the beta term (same layout as out).
/// `bias`, when given, is a dense [N] of dtype out_t added to every row, and `act` (relu or
/// gelu_tanh, unset: none) is applied last: in cuBLASLt's epilogue (one rounding) where it has an
/// algorithm for them, else by passes over out.
void gemm(DType t, int64_t M, int64_t N, int64_t K, int64_t batch, const Mat& A, const Mat& B,
          void* out, double alpha, double beta, DType out_t = DType::boolean,
          const void* c = nullptr, const void* bias = nullptr,
          std::optional<detail::UnaryOp> act = std::nullopt);

/// Runs a fused chain with a kernel generated for its program (NVRTC, cached on disk); false
/// when generation is off (WICK_NVRTC=0) or failed, so the interpreter runs it.
bool launch_generated(const FusedArgs& f, void* out, const Space& sp);

}  // namespace wick::cuda
