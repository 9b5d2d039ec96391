#pragma once
// Declarations of every primitive. Builders (src/graph/ops_*.cpp) validate and create them;
// their CPU kernels are defined in src/backend/cpu/ (one family per file).
#include <cstdint>
#include <vector>

#include "graph/primitive.h"

namespace wick::detail {

#define WICK_PRIMITIVE(cls, str)                                        \
  const char* name() const override { return str; }                    \
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;

// ---- creation ----
class Full : public Primitive {
 public:
  explicit Full(double v) : value(v) {}
  WICK_PRIMITIVE(Full, "full")
  bool is_equivalent(const Primitive& o) const override;
  double value;
};

class Arange : public Primitive {
 public:
  Arange(double s, double st) : start(s), step(st) {}
  WICK_PRIMITIVE(Arange, "arange")
  double start, step;
};

class Random : public Primitive {
 public:
  enum class Kind { normal, uniform };
  Random(Kind k, uint64_t s, uint64_t c, double p0, double p1)
      : kind(k), seed(s), counter(c), a(p0), b(p1) {}
  WICK_PRIMITIVE(Random, "random")
  Kind kind;
  uint64_t seed, counter;
  double a, b;  // mean/std or low/high
};

// ---- elementwise ----
enum class UnaryOp {
  neg, abs, exp, log, sqrt, rsqrt, sin, cos, tanh, sigmoid, silu, gelu, gelu_tanh, relu, square,
  logical_not
};
const char* unary_name(UnaryOp op);

class Unary : public Primitive {
 public:
  explicit Unary(UnaryOp o) : op(o) {}
  const char* name() const override { return unary_name(op); }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  UnaryOp op;
};

enum class BinaryOp {
  add, sub, mul, div, pow, max, min, eq, ne, lt, le, gt, ge, logical_and, logical_or
};
const char* binary_name(BinaryOp op);

/// Inputs share one dtype and broadcast to the output shape (kernels align their strides, so
/// no broadcast view is built); comparisons write bool.
class Binary : public Primitive {
 public:
  explicit Binary(BinaryOp o) : op(o) {}
  const char* name() const override { return binary_name(op); }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  BinaryOp op;
};

/// Inputs: cond (bool), a, b, broadcastable to the output shape; a and b have the out dtype.
class Where : public Primitive {
 public:
  WICK_PRIMITIVE(Where, "where")
};

class AsType : public Primitive {
 public:
  WICK_PRIMITIVE(AsType, "astype")
};

/// A dense row-major copy of any view.
class Copy : public Primitive {
 public:
  WICK_PRIMITIVE(Copy, "contiguous")
};

// ---- reductions (output keeps reduced axes as size 1) ----
enum class ReduceOp { sum, mean, max, min };

class Reduce : public Primitive {
 public:
  Reduce(ReduceOp o, std::vector<int> ax) : op(o), axes(std::move(ax)) {}
  const char* name() const override;
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  ReduceOp op;
  std::vector<int> axes;  // sorted, unique, non-negative
};

class ArgReduce : public Primitive {
 public:
  ArgReduce(bool mx, int ax) : is_max(mx), axis(ax) {}
  const char* name() const override { return is_max ? "argmax" : "argmin"; }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  bool is_max;
  int axis;
};

// ---- linear algebra and nn ----
/// a [..., M, K] x b [..., K, N]; batch dims of both already broadcast to the output's.
class Matmul : public Primitive {
 public:
  WICK_PRIMITIVE(Matmul, "matmul")
};

/// Inputs: x [..., in], W [out, in], A [r, in], B [out, r], then bias [out] when has_bias.
class LoraLinear : public Primitive {
 public:
  LoraLinear(double s, bool hb) : scale(s), has_bias(hb) {}
  WICK_PRIMITIVE(LoraLinear, "lora_linear")
  double scale;
  bool has_bias;
};

/// Over the last axis.
class Softmax : public Primitive {
 public:
  explicit Softmax(bool lg) : log(lg) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  bool log;
};

/// Inputs: x, then w [D] when has_weight.
class RmsNorm : public Primitive {
 public:
  RmsNorm(double e, bool hw) : eps(e), has_weight(hw) {}
  WICK_PRIMITIVE(RmsNorm, "rms_norm")
  double eps;
  bool has_weight;
};

/// Inputs: x, then w [D] when has_weight, then b [D] when has_bias.
class LayerNorm : public Primitive {
 public:
  LayerNorm(double e, bool hw, bool hb) : eps(e), has_weight(hw), has_bias(hb) {}
  WICK_PRIMITIVE(LayerNorm, "layer_norm")
  double eps;
  bool has_weight, has_bias;
};

/// Rotate-half RoPE over the last axis of x [..., T, D].
class Rope : public Primitive {
 public:
  Rope(std::vector<float> f, int64_t off) : inv_freq(std::move(f)), offset(off) {}
  WICK_PRIMITIVE(Rope, "rope")
  std::vector<float> inv_freq;  // D/2
  int64_t offset;
};

/// Inputs: q [B,Hq,T,D], k [B,Hkv,S,D], v [B,Hkv,S,D], then an additive f32 mask already
/// broadcast to [B,Hq,T,S] (a view) when has_mask.
class Attention : public Primitive {
 public:
  Attention(double s, bool c, bool hm) : scale(s), causal(c), has_mask(hm) {}
  WICK_PRIMITIVE(Attention, "scaled_dot_product_attention")
  double scale;
  bool causal, has_mask;
};

// ---- views (share the input's storage) ----
/// Same elements in a new shape; a view when the input's strides allow, a copy otherwise.
class Reshape : public Primitive {
 public:
  WICK_PRIMITIVE(Reshape, "reshape")
};

class Transpose : public Primitive {
 public:
  explicit Transpose(std::vector<int> p) : perm(std::move(p)) {}
  WICK_PRIMITIVE(Transpose, "transpose")
  std::vector<int> perm;
};

/// Output shape is set by the builder; start and step per axis (step > 0).
class Slice : public Primitive {
 public:
  Slice(std::vector<int64_t> s, std::vector<int64_t> st) : start(std::move(s)), step(std::move(st)) {}
  WICK_PRIMITIVE(Slice, "slice")
  std::vector<int64_t> start, step;
};

class BroadcastTo : public Primitive {
 public:
  WICK_PRIMITIVE(BroadcastTo, "broadcast_to")
};

/// Inputs: x, update. The output is x with the strided region (start, step per axis; extent =
/// update's shape) replaced by update. Reuses x's buffer when nothing else can see it, so a
/// KV cache grows in place.
class SliceUpdate : public Primitive {
 public:
  SliceUpdate(std::vector<int64_t> s, std::vector<int64_t> st) : start(std::move(s)), step(std::move(st)) {}
  WICK_PRIMITIVE(SliceUpdate, "slice_update")
  std::vector<int64_t> start, step;
};

// ---- joining and indexing ----
class Concatenate : public Primitive {
 public:
  explicit Concatenate(int ax) : axis(ax) {}
  WICK_PRIMITIVE(Concatenate, "concatenate")
  int axis;
};

/// Inputs: x, indices (i32/i64).
class Take : public Primitive {
 public:
  explicit Take(int ax) : axis(ax) {}
  WICK_PRIMITIVE(Take, "take")
  int axis;
};

class TakeAlongAxis : public Primitive {
 public:
  explicit TakeAlongAxis(int ax) : axis(ax) {}
  WICK_PRIMITIVE(TakeAlongAxis, "take_along_axis")
  int axis;
};

#undef WICK_PRIMITIVE

/// Initialises the CPU backend's libraries (called once by the runtime before its first
/// evaluation, so their global state outlives the runtime's exit handler).
void prepare_cpu_backend();

}  // namespace wick::detail
