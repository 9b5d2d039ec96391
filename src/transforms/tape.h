#pragma once
// The traced form of a compiled function: a topologically ordered list of ops over the
// function's inputs and captured constants. Passes rewrite it; replay turns it into nodes.
#include <functional>
#include <memory>
#include <vector>

#include "graph/primitives.h"

namespace wick::detail {

struct Ref {
  enum class Kind : uint8_t { input, constant, op };
  Kind kind;
  uint32_t index;
  bool operator==(const Ref&) const = default;
};

struct TapeOp {
  std::shared_ptr<Primitive> prim;
  std::vector<Ref> ins;
  Shape shape;
  DType dtype;
  // Where the traced node ran: an op without inputs (full, arange) runs there again; the
  // others follow their inputs.
  Device device = Device::cpu();
};

/// The node of `op` over `ins` (replay, folding and graph recording all build ops this way).
Tensor make_op(const TapeOp& op, std::vector<Tensor> ins);

struct Tape {
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;
  std::vector<Tensor> constants;
  std::vector<TapeOp> ops;
  std::vector<Ref> outputs;

  Shape shape_of(Ref r) const;
  DType dtype_of(Ref r) const;
  /// How many op inputs and outputs name each op.
  std::vector<uint32_t> use_counts() const;
};

/// The tape's outputs over `inputs`: a node per op, as lazy tensors; with `run`, each node is
/// handed to it as soon as it is built (to evaluate at once) and intermediates are dropped after
/// their last use.
std::vector<Tensor> replay(const Tape& t, const std::vector<Tensor>& inputs,
                           const std::function<void(Node&)>& run = {});

struct PassStats {
  size_t merged = 0, folded = 0, fused_elementwise = 0, fused_patterns = 0;
};

/// Keeps only ops the outputs need, renumbered in order (refs to dropped ops must not remain).
void eliminate_dead(Tape& t);
/// Merges ops with equivalent primitives and identical inputs.
void merge_common(Tape& t, PassStats& s);
/// Evaluates ops whose inputs are all constants (once, now) and removes x·1, x+0, x-0, x/1.
void fold_constants(Tape& t, PassStats& s);
/// softmax(x·s + mask) -> ScaledMaskedSoftmax; rms_norm(x)·w -> rms_norm(x, w);
/// x·Wᵀ + s·(x·Aᵀ)·Bᵀ -> lora_linear; matmul + bias vector or residual -> matmul with that as a
/// third input; rope_at feeding write_at or attention -> that op rotating as it goes; a
/// decoding step's attention over the two cache writes it reads -> CachedAttention.
void fuse_patterns(Tape& t, PassStats& s);
/// Matmuls of at most FusedLinear::kMaxRows rows that share their input -> one FusedLinear,
/// with the rms_norm or gated product in front of them as its prologue (after fuse_patterns).
void fuse_linears(Tape& t, PassStats& s);
/// relu or gelu_tanh of a matmul (with at most a bias) that nothing else reads -> the matmul
/// with that activation (cuBLASLt's epilogue), after fuse_linears.
void fuse_activations(Tape& t, PassStats& s);
/// Chains of single-use elementwise ops -> FusedElementwise.
void fuse_elementwise(Tape& t, PassStats& s);
/// Peak bytes of intermediates when evaluated in order and freed after their last use.
size_t plan_peak_bytes(const Tape& t);

}  // namespace wick::detail
