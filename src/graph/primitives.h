#pragma once
// Declarations of every primitive. Builders (src/graph/ops_*.cpp) validate and create them;
// their CPU kernels are defined in src/backend/cpu/ (one family per file).
#include <cstdint>
#include <optional>
#include <typeinfo>
#include <vector>

#include "core/adamw_rule.h"
#include "graph/op_codes.h"
#include "graph/primitive.h"

namespace wick::detail {

#define WICK_VJP                                                                          \
  std::vector<Tensor> vjp(const std::vector<Tensor>& primals, const Tensor& out, const Tensor& cot, \
                          const std::vector<bool>& need) override;

// For is_equivalent: o has this primitive's exact type (and, with `fields`, equal parameters).
#define WICK_SAME(cls, fields) \
  (typeid(o) == typeid(cls) && [&](const cls& p) { return fields; }(static_cast<const cls&>(o)))

#define WICK_PRIMITIVE(cls, str)                                        \
  const char* name() const override { return str; }                    \
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;    \
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;

// Views only set strides, so the same code serves every device (Primitive::eval_cuda).
#define WICK_VIEW_PRIMITIVE(cls, str)                                   \
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
const char* unary_name(UnaryOp op);

class Unary : public Primitive {
 public:
  WICK_VJP
  explicit Unary(UnaryOp o) : op(o) {}
  const char* name() const override { return unary_name(op); }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  UnaryOp op;
};

const char* binary_name(BinaryOp op);

/// Inputs share one dtype and broadcast to the output shape (kernels align their strides, so
/// no broadcast view is built); comparisons write bool.
class Binary : public Primitive {
 public:
  WICK_VJP
  explicit Binary(BinaryOp o) : op(o) {}
  const char* name() const override { return binary_name(op); }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  BinaryOp op;
};

/// Inputs: cond (bool), a, b, broadcastable to the output shape; a and b have the out dtype.
class Where : public Primitive {
 public:
  WICK_VJP
  WICK_PRIMITIVE(Where, "where")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Where, true); }
};

class AsType : public Primitive {
 public:
  WICK_VJP
  WICK_PRIMITIVE(AsType, "astype")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(AsType, true); }
};

/// A dense row-major copy of any view.
class Copy : public Primitive {
 public:
  WICK_VJP
  WICK_PRIMITIVE(Copy, "contiguous")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Copy, true); }
};

// ---- reductions (output keeps reduced axes as size 1) ----

class Reduce : public Primitive {
 public:
  WICK_VJP
  Reduce(ReduceOp o, std::vector<int> ax) : op(o), axes(std::move(ax)) {}
  const char* name() const override;
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override;
  ReduceOp op;
  std::vector<int> axes;  // sorted, unique, non-negative
};

/// A decoding step's greedy choice: input logits [rows, vocab] (vocab < 2^24); output f32
/// [rows, 2], each row's log-probability of its maximum, −log Σ exp(l − max), then the
/// maximum's index (exact in f32 below 2^24), in one pass over the vocabulary. The index is
/// argmax's (the first NaN, else the first maximum); a NaN or +inf logit, or a row of −inf,
/// gives a NaN log-probability.
class GreedyPick : public Primitive {
 public:
  WICK_PRIMITIVE(GreedyPick, "greedy_pick")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(GreedyPick, true); }
};

class ArgReduce : public Primitive {
 public:
  ArgReduce(bool mx, int ax) : is_max(mx), axis(ax) {}
  const char* name() const override { return is_max ? "argmax" : "argmin"; }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;
  bool is_max;
  int axis;
};

// ---- linear algebra and nn ----
/// a [..., M, K] x b [..., K, N]; batch dims of both already broadcast to the output's. Compile's
/// fusion may add a third input, added to the product: a bias [N] for every row (x·Wᵀ + b) or
/// an addend of the output's shape (a residual connection); the GEMV kernel adds it as it
/// writes, and cuBLASLt reads an addend as its C operand. It may also set `act` (relu or
/// gelu_tanh, over the product with at most a bias): cuBLASLt's epilogue applies it.
class Matmul : public Primitive {
 public:
  WICK_VJP
  Matmul() = default;
  explicit Matmul(UnaryOp a) : act(a) {}
  WICK_PRIMITIVE(Matmul, "matmul")
  void print(std::ostream& os) const override {
    os << name();
    if (act) os << "[" << unary_name(*act) << "]";
  }
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Matmul, p.act == act); }
  std::optional<UnaryOp> act;
};

/// A few rows times several weights that share them, made by compile for decoding (at most
/// kMaxRows rows): out [M, ΣN_i] = n(x)·[W_0 | W_1 | ...] + [a_0 | a_1 | ...], one GEMV kernel on
/// a GPU instead of a normalisation and a GEMM per weight. With `norm`, n(x) = rms_norm(x)·g,
/// else x. With `gated` (two weights of one width N: gate and up), out [M, N] is
/// silu(gate)·up, as a gated MLP computes it before its down projection. Every step is rounded
/// as the unfused ops round. Inputs: x [M, K], then g [K] with norm, then the weights [K, N_i],
/// then one addend per weight with has_addend set: a bias [N_i] or [M, N_i] (a residual), then
/// A [r_i, K] and B [N_i, r_i] per weight with a LoRA adapter (lora_scale set): that weight's
/// product is lora_linear's, x·W_iᵀ + bias + s·(x·A_iᵀ)·B_iᵀ rounded once.
class FusedLinear : public Primitive {
 public:
  static constexpr int64_t kMaxRows = 8, kMaxGroups = 3;
  FusedLinear(bool n, double e, bool g, std::vector<int64_t> w, std::vector<bool> a,
              std::vector<std::optional<double>> l = {})
      : norm(n),
        eps(e),
        gated(g),
        widths(std::move(w)),
        has_addend(std::move(a)),
        lora_scale(std::move(l)) {
    lora_scale.resize(widths.size());
  }
  WICK_PRIMITIVE(FusedLinear, "fused_linear")
  void print(std::ostream& os) const override;
  /// The input index of the first weight, and of the first adapter's A (see above).
  size_t first_weight() const { return norm ? 2 : 1; }
  size_t first_adapter() const {
    size_t i = first_weight() + widths.size();
    for (bool a : has_addend) i += a ? 1 : 0;
    return i;
  }
  bool norm;
  double eps;  // of rms_norm
  bool gated;
  std::vector<int64_t> widths;
  std::vector<bool> has_addend;
  std::vector<std::optional<double>> lora_scale;
};

/// Inputs: x [..., in], W [out, in], A [r, in], B [out, r], then bias [out] when has_bias.
class LoraLinear : public Primitive {
 public:
  WICK_VJP
  LoraLinear(double s, bool hb) : scale(s), has_bias(hb) {}
  WICK_PRIMITIVE(LoraLinear, "lora_linear")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(LoraLinear, p.scale == scale && p.has_bias == has_bias); }
  double scale;
  bool has_bias;
};

/// Over the last axis.
class Softmax : public Primitive {
 public:
  WICK_VJP
  explicit Softmax(bool lg) : log(lg) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  void eval_cpu(std::span<Node* const> inputs, Node& out) override;
  void eval_cuda(std::span<Node* const> inputs, Node& out) override;
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Softmax, p.log == log); }
  bool log;
};

/// Inputs: x, then w [D] when has_weight.
class RmsNorm : public Primitive {
 public:
  WICK_VJP
  RmsNorm(double e, bool hw) : eps(e), has_weight(hw) {}
  WICK_PRIMITIVE(RmsNorm, "rms_norm")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(RmsNorm, p.eps == eps && p.has_weight == has_weight); }
  double eps;
  bool has_weight;
};

/// The input gradient of RmsNorm in one pass (CUDA only; the CPU composes it from ops):
/// inputs x, the cotangent g and, when has_weight, w; output dx in x's dtype, computed in f32:
/// r·(g·w − n·mean(g·w·n)) with r = rsqrt(mean(x²) + eps), n = x·r.
class RmsNormGrad : public Primitive {
 public:
  RmsNormGrad(double e, bool hw) : eps(e), has_weight(hw) {}
  WICK_PRIMITIVE(RmsNormGrad, "rms_norm_grad")
  double eps;
  bool has_weight;
};

/// Inputs: x, then w [D] when has_weight, then b [D] when has_bias.
class LayerNorm : public Primitive {
 public:
  WICK_VJP
  LayerNorm(double e, bool hw, bool hb) : eps(e), has_weight(hw), has_bias(hb) {}
  WICK_PRIMITIVE(LayerNorm, "layer_norm")
  double eps;
  bool has_weight, has_bias;
};

/// Rotate-half RoPE over the last axis of x [..., T, D].
/// Inputs: x, then optionally an i64 tensor [1] whose value is added to `offset` when the op
/// runs (a position that changes between replays of one graph).
class Rope : public Primitive {
 public:
  WICK_VJP
  Rope(std::vector<float> f, int64_t off) : inv_freq(std::move(f)), offset(off) {}
  WICK_PRIMITIVE(Rope, "rope")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Rope, p.inv_freq == inv_freq && p.offset == offset); }
  std::vector<float> inv_freq;  // D/2
  int64_t offset;
};

/// Inputs: q [B,Hq,T,D], k [B,Hkv,S,D], v [B,Hkv,S,D], then an additive f32 mask already
/// broadcast to [B,Hq,T,S] (a view) when has_mask, then the position with rope_q.
class Attention : public Primitive {
 public:
  WICK_VJP
  Attention(double s, bool c, bool hm, std::vector<float> rq = {})
      : scale(s), causal(c), has_mask(hm), rope_q(std::move(rq)) {}
  WICK_PRIMITIVE(Attention, "scaled_dot_product_attention")
  void print(std::ostream& os) const override { os << name() << (rope_q.empty() ? "" : "[rope q]"); }
  double scale;
  bool causal, has_mask;
  // Set by compile for attention(rope_at(q, position), ...): q is rotated as Rope would at
  // position + t (the position is then the last input) as it is read.
  std::vector<float> rope_q;

 private:
  std::optional<std::vector<Tensor>> flash_vjp(const std::vector<Tensor>& p, const Tensor& out, const Tensor& g) const;
};

/// A decoding step's attention(rope_at(q, p), write_at(kc, rope_at(k, p), p), write_at(vc, v, p),
/// mask) as one op, made by compile: the step's key and value rows are written into the caches
/// in place (the key rotated) by the attention kernel itself, which takes the rows at the
/// position from them rather than reading them back. Inputs: q [B,Hq,T,D], the caches kc and vc
/// [B,Hkv,S,D], the mask (when has_mask, as Attention's), the position, then k and v
/// [B,Hkv,T,D], both unrotated. The output is the attention's.
class CachedAttention : public Primitive {
 public:
  CachedAttention(double s, bool hm, std::vector<float> f, int64_t w = -1)
      : scale(s), has_mask(hm), inv_freq(std::move(f)), window(w) {}
  WICK_PRIMITIVE(CachedAttention, "cached_attention")
  void print(std::ostream& os) const override {
    os << name() << (window >= 0 ? "[position mask]" : "");
  }
  double scale;
  bool has_mask;
  std::vector<float> inv_freq;  // of q's and k's RoPE
  // >= 0: the mask was PositionMask(window) at this op's position, folded in by compile: there
  // is no mask input, and the kernel hides keys by the position itself.
  int64_t window;
};

/// A decoding step's additive f32 mask [1, 1, T, S] over a whole preallocated cache: key s is
/// visible (0) to query t while s <= position + t and, with a window w > 0, position + t − s < w;
/// the others get −inf. Input: the position (i64 [1], read when the op runs, as rope_at's).
class PositionMask : public Primitive {
 public:
  explicit PositionMask(int64_t w) : window(w) {}
  WICK_PRIMITIVE(PositionMask, "position_mask")
  bool is_equivalent(const Primitive& o) const override {
    return WICK_SAME(PositionMask, p.window == window);
  }
  int64_t window;
};

// ---- views (share the input's storage) ----
/// Same elements in a new shape; a view when the input's strides allow, a copy otherwise.
class Reshape : public Primitive {
 public:
  WICK_VJP
  WICK_PRIMITIVE(Reshape, "reshape")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Reshape, true); }
  bool is_view() const override { return true; }
};

class Transpose : public Primitive {
 public:
  WICK_VJP
  explicit Transpose(std::vector<int> p) : perm(std::move(p)) {}
  WICK_VIEW_PRIMITIVE(Transpose, "transpose")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Transpose, p.perm == perm); }
  bool is_view() const override { return true; }
  std::vector<int> perm;
};

/// Output shape is set by the builder; start and step per axis (step > 0).
class Slice : public Primitive {
 public:
  WICK_VJP
  Slice(std::vector<int64_t> s, std::vector<int64_t> st) : start(std::move(s)), step(std::move(st)) {}
  WICK_VIEW_PRIMITIVE(Slice, "slice")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Slice, p.start == start && p.step == step); }
  bool is_view() const override { return true; }
  std::vector<int64_t> start, step;
};

class BroadcastTo : public Primitive {
 public:
  WICK_VJP
  WICK_VIEW_PRIMITIVE(BroadcastTo, "broadcast_to")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(BroadcastTo, true); }
  bool is_view() const override { return true; }
};

/// Inputs: x, update. The output is x with the strided region (start, step per axis; extent =
/// update's shape) replaced by update. Reuses x's buffer when nothing else can see it, so a
/// KV cache grows in place.
class SliceUpdate : public Primitive {
 public:
  WICK_VJP
  SliceUpdate(std::vector<int64_t> s, std::vector<int64_t> st) : start(std::move(s)), step(std::move(st)) {}
  WICK_PRIMITIVE(SliceUpdate, "slice_update")
  std::vector<int64_t> start, step;
};

/// Writes input 1 into input 0's own storage, in place, at the position held by input 2 (an i64
/// tensor [1], read when the op runs) along `axis`; the output is input 0's buffer after the
/// write. Only for a buffer that no pending op reads as its old value: the KV cache of decoding
/// steps replayed as one graph, whose write position changes every call.
class WriteAt : public Primitive {
 public:
  explicit WriteAt(int a, std::vector<float> f = {}) : axis(a), rope(std::move(f)) {}
  WICK_PRIMITIVE(WriteAt, "write_at")
  void print(std::ostream& os) const override { os << (rope.empty() ? "write_at" : "write_at[rope]"); }
  int axis;
  // Set by compile for write_at(buf, rope_at(u, position), position): the rows are rotated as
  // Rope would (frequencies over the last axis, positions along `axis`) while they are written.
  std::vector<float> rope;
};

/// The identity (a view) whose gradient is zero.
class StopGradient : public Primitive {
 public:
  WICK_VIEW_PRIMITIVE(StopGradient, "stop_gradient")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(StopGradient, true); }
  WICK_VJP
  bool is_view() const override { return true; }
};

// ---- joining and indexing ----
class Concatenate : public Primitive {
 public:
  WICK_VJP
  explicit Concatenate(int ax) : axis(ax) {}
  WICK_PRIMITIVE(Concatenate, "concatenate")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Concatenate, p.axis == axis); }
  int axis;
};

/// Inputs: x, indices (i32/i64).
class Take : public Primitive {
 public:
  WICK_VJP
  explicit Take(int ax) : axis(ax) {}
  WICK_PRIMITIVE(Take, "take")
  bool is_equivalent(const Primitive& o) const override { return WICK_SAME(Take, p.axis == axis); }
  int axis;
};

class TakeAlongAxis : public Primitive {
 public:
  WICK_VJP
  explicit TakeAlongAxis(int ax) : axis(ax) {}
  WICK_PRIMITIVE(TakeAlongAxis, "take_along_axis")
  int axis;
};

/// The gradient of take: inputs (cot, indices); the output (x's shape, set by the builder) is
/// zero except that cot's slices are added at the indexed positions along `axis`.
class TakeGrad : public Primitive {
 public:
  explicit TakeGrad(int ax) : axis(ax) {}
  WICK_PRIMITIVE(TakeGrad, "take_grad")
  WICK_VJP
  int axis;
};

/// The gradient of take_along_axis: inputs (cot, indices) of one shape; output as TakeGrad.
class TakeAlongAxisGrad : public Primitive {
 public:
  explicit TakeAlongAxisGrad(int ax) : axis(ax) {}
  WICK_PRIMITIVE(TakeAlongAxisGrad, "take_along_axis_grad")
  WICK_VJP
  int axis;
};

/// Per-row cross-entropy: inputs logits [N, V] (float), labels [N] (i32/i64); output [N] f32,
/// 0 where the label is ignore_index. With label smoothing ε the target is (1-ε)·onehot + ε/V.
class CrossEntropy : public Primitive {
 public:
  CrossEntropy(int64_t ig, double ls) : ignore_index(ig), smoothing(ls) {}
  WICK_PRIMITIVE(CrossEntropy, "cross_entropy")
  WICK_VJP
  int64_t ignore_index;
  double smoothing;
};

/// Its gradient: inputs logits, labels, g [N] f32; output d logits (logits' shape and dtype),
/// g_n · (softmax - target) row by row, without an f32 copy of the logits.
class CrossEntropyGrad : public Primitive {
 public:
  CrossEntropyGrad(int64_t ig, double ls) : ignore_index(ig), smoothing(ls) {}
  WICK_PRIMITIVE(CrossEntropyGrad, "cross_entropy_grad")
  int64_t ignore_index;
  double smoothing;
};

/// A chain of elementwise ops fused by compile: one pass over memory. Registers 0..n-1 hold the
/// inputs (broadcast to the output shape); instruction i writes register n+i; the last register
/// is the output. Each instruction computes exactly as its unfused kernel (in f32 for
/// f32/f16/bf16, f64 for f64) and rounds to its own dtype, so fusion does not change results.
class FusedElementwise : public Primitive {
 public:
  enum class Kind : uint8_t { unary, binary, where, cast };
  struct Instr {
    Kind kind;
    uint8_t op;  // UnaryOp or BinaryOp
    DType dtype; // the instruction's result dtype
    int a = -1, b = -1, c = -1;
  };
  FusedElementwise(std::vector<Instr> p, bool wide) : program(std::move(p)), f64(wide) {}
  WICK_PRIMITIVE(FusedElementwise, "fused_elementwise")
  void print(std::ostream& os) const override;
  std::vector<Instr> program;
  bool f64;  // registers are double (the chain is f64), else float
};

/// softmax(scale · x + mask) over the last axis in one pass (compile's pattern fusion): inputs
/// x [..., S] and, when has_mask, an additive mask of x's dtype broadcast to x's shape.
class ScaledMaskedSoftmax : public Primitive {
 public:
  ScaledMaskedSoftmax(double s, bool hm) : scale(s), has_mask(hm) {}
  WICK_PRIMITIVE(ScaledMaskedSoftmax, "scaled_masked_softmax")
  double scale;
  bool has_mask;
};

/// The attention probabilities softmax(scale·q·kᵀ + mask, causal) [B, Hq, T, S] in the output's
/// dtype, computed in f32 (fully masked rows 0): inputs q, k and, when has_mask, the f32 mask
/// broadcast to [B, Hq, T, S]. The CUDA attention gradient recomputes them with it (no vjp of
/// its own).
class AttentionProbs : public Primitive {
 public:
  AttentionProbs(double s, bool c, bool hm) : scale(s), causal(c), has_mask(hm) {}
  WICK_PRIMITIVE(AttentionProbs, "attention_probs")
  double scale;
  bool causal, has_mask;
};

/// The attention gradient in one op (flash-attention style, CUDA only): inputs q, k, v, the
/// forward's output o and its cotangent dO (no mask); the output [B·Hq·T + 2·B·Hkv·S, D] holds
/// dQ, dK and dV one after the other, in q's dtype (the vjp takes views of it). Probabilities
/// are recomputed from each row's log-sum-exp, never stored.
class AttentionGrad : public Primitive {
 public:
  AttentionGrad(double s, bool c) : scale(s), causal(c) {}
  WICK_PRIMITIVE(AttentionGrad, "attention_grad")
  double scale;
  bool causal;
};

/// The softmax rule of the gradient over the last axis: inputs p and dp (one shape, the output's
/// dtype); output scale·p·(dp − Σ dp·p) computed in f32, in one pass instead of three.
class SoftmaxGrad : public Primitive {
 public:
  explicit SoftmaxGrad(double s = 1.0) : scale(s) {}
  WICK_PRIMITIVE(SoftmaxGrad, "softmax_grad")
  double scale;
};

/// One AdamW step of n tensors (core/adamw_rule.h): inputs the n parameters (one float dtype),
/// their n gradients (one float dtype, the parameters' shapes), the n first and n second moments
/// (f32), then the step's f32 scalars 1 − lr·wd, lr / (1 − β1ᵗ) and sqrt(1 − β2ᵗ). Each input is
/// read where it lies, none is gathered first. The output f32 [3, Σ numel] holds the new
/// parameters, first moments and second moments, each tensor's values at its offset in input
/// order (the optimizer takes views of it).
class AdamWStep : public Primitive {
 public:
  AdamWStep(double b1, double b2, double e, std::vector<bool> d)
      : beta1(b1), beta2(b2), eps(e), decays(std::move(d)) {}
  WICK_PRIMITIVE(AdamWStep, "adamw_step")
  /// β1, 1 − β1, β2, 1 − β2 and eps rounded to f32 from double (as the composed ops rounded
  /// their scalars); the step's scalars left 0.
  AdamWConstants constants() const {
    AdamWConstants c{};
    c.b1 = static_cast<float>(beta1);
    c.one_minus_b1 = static_cast<float>(1 - beta1);
    c.b2 = static_cast<float>(beta2);
    c.one_minus_b2 = static_cast<float>(1 - beta2);
    c.eps = static_cast<float>(eps);
    return c;
  }
  double beta1, beta2, eps;
  std::vector<bool> decays;  // per tensor: whether 1 − lr·wd multiplies it
};

/// Copies its input to the output's device (host <-> CUDA, or between CUDA devices).
class ToDevice : public Primitive {
 public:
  WICK_PRIMITIVE(ToDevice, "to_device")
  WICK_VJP
};

#undef WICK_PRIMITIVE
#undef WICK_VIEW_PRIMITIVE
#undef WICK_VJP
#undef WICK_SAME

/// Initialises the CPU backend's libraries (called once by the runtime before its first
/// evaluation, so their global state outlives the runtime's exit handler).
void prepare_cpu_backend();

}  // namespace wick::detail
