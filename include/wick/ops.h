#pragma once
#include <optional>
#include <vector>

#include "wick/tensor.h"

// Op builders. Every op is lazy: it validates shapes and dtypes at once (throwing wick::Error
// naming the op and the shapes) and returns a tensor whose shape and dtype are known; nothing is
// computed until evaluation.
//
// Broadcasting follows NumPy. Dtype promotion (binary ops, where):
//   tensor (x) tensor: promote_types (bool < i32 < i64 < floats; f16+bf16 -> f32; wider float wins).
//   tensor (x) scalar: the scalar is "weak": it takes the tensor's dtype, except that a
//   non-integral scalar (0.5, not 2.0) with an integer or bool tensor gives f32, and an
//   integral scalar with a bool tensor gives i64.
//   Arithmetic on two bool tensors counts in i64 (as PyTorch); maximum/minimum stay bool.
// Comparisons return bool. maximum, minimum, max and min propagate NaN; argmax/argmin return
// the first NaN, else the first extreme. sum of bool/integer tensors is i64; mean is float. Float-only unary ops (exp, log, sin, ...) turn integer/bool inputs
// into f32. f16 and bf16 are computed in f32 on the CPU and rounded once per op.

namespace wick {

// ---- creation ---------------------------------------------------------------------------------
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
Tensor ones(const Shape& shape, DType dtype = DType::f32);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor full_like(const Tensor& x, double value);
/// A 0-d tensor.
Tensor scalar(double value, DType dtype = DType::f32);
/// [start, stop) with `step`; length ceil((stop-start)/step).
Tensor arange(double start, double stop, double step = 1.0, DType dtype = DType::f32);
Tensor arange(int64_t n, DType dtype = DType::i64);

// ---- unary ------------------------------------------------------------------------------------
Tensor negative(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
/// GELU, exact erf form: x * 0.5 * (1 + erf(x / sqrt(2))).
Tensor gelu(const Tensor& x);
/// GELU, tanh approximation (PyTorch approximate="tanh").
Tensor gelu_tanh(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor square(const Tensor& x);
Tensor logical_not(const Tensor& x);
/// The error function.
Tensor erf(const Tensor& x);

// ---- binary -----------------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor subtract(const Tensor& a, const Tensor& b);
Tensor multiply(const Tensor& a, const Tensor& b);
/// True division: integer operands give f32.
Tensor divide(const Tensor& a, const Tensor& b);
Tensor power(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor equal(const Tensor& a, const Tensor& b);
Tensor not_equal(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
Tensor less_equal(const Tensor& a, const Tensor& b);
Tensor greater(const Tensor& a, const Tensor& b);
Tensor greater_equal(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);

// Scalar forms (the scalar is weakly typed, see above).
#define WICK_SCALAR_FORMS(name)                  \
  Tensor name(const Tensor& a, double b);        \
  Tensor name(double a, const Tensor& b);
WICK_SCALAR_FORMS(add)
WICK_SCALAR_FORMS(subtract)
WICK_SCALAR_FORMS(multiply)
WICK_SCALAR_FORMS(divide)
WICK_SCALAR_FORMS(power)
WICK_SCALAR_FORMS(maximum)
WICK_SCALAR_FORMS(minimum)
WICK_SCALAR_FORMS(equal)
WICK_SCALAR_FORMS(not_equal)
WICK_SCALAR_FORMS(less)
WICK_SCALAR_FORMS(less_equal)
WICK_SCALAR_FORMS(greater)
WICK_SCALAR_FORMS(greater_equal)
#undef WICK_SCALAR_FORMS

Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

/// Elementwise choice: cond ? a : b (cond is converted to bool; a, b promote).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
Tensor where(const Tensor& cond, double a, const Tensor& b);
/// Conversion; float -> int truncates toward zero, anything -> bool is `!= 0`.
Tensor astype(const Tensor& x, DType dtype);

// ---- reductions (axes may be negative; empty axes = all axes) ----------------------------------
Tensor sum(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor max(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
Tensor min(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
/// log(sum(exp(x))) computed stably (max subtracted first).
Tensor logsumexp(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false);
/// Variance with `ddof` degrees of freedom removed (0: population, 1: sample).
Tensor var(const Tensor& x, const std::vector<int>& axes = {}, bool keepdims = false,
           int ddof = 0);
/// Index (i64) of the first maximum along `axis`.
Tensor argmax(const Tensor& x, int axis, bool keepdims = false);
Tensor argmin(const Tensor& x, int axis, bool keepdims = false);

// ---- linear algebra and neural-network ops ---------------------------------------------------
/// Batched matmul: a [..., M, K] x b [..., K, N] with broadcast batch dims; 1-d operands
/// are promoted as in NumPy. Transposed views are passed to GEMM without copying.
Tensor matmul(const Tensor& a, const Tensor& b);
/// x [..., in] · Wᵀ (W [out, in]) + bias [out].
Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias = std::nullopt);
/// LoRA linear in PEFT layout: x·Wᵀ + bias + scale·(x·Aᵀ)·Bᵀ, A [r, in], B [out, r].
Tensor lora_linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                   const Tensor& a, const Tensor& b, double scale);
Tensor softmax(const Tensor& x, int axis = -1);
Tensor log_softmax(const Tensor& x, int axis = -1);
/// x · rsqrt(mean(x², last axis) + eps) · w, computed in f32 (w may be absent).
Tensor rms_norm(const Tensor& x, const std::optional<Tensor>& w, double eps);
/// (x - mean) · rsqrt(var + eps) · w + b over the last axis (w, b may be absent).
Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& w, const std::optional<Tensor>& b,
                  double eps);
/// Rotary embedding, rotate-half form, over the last axis D (even) of x [..., T, D]: position of
/// row t is offset + t. inv_freq_i = theta^(-2i/D) unless `inv_freq` ([D/2], f32) is given.
Tensor rope(const Tensor& x, double theta, int64_t offset = 0);
Tensor rope(const Tensor& x, const std::vector<float>& inv_freq, int64_t offset = 0);
/// Scaled dot-product attention. q [B, Hq, T, D], k and v [B, Hkv, S, D] with Hq % Hkv == 0
/// (GQA: each KV head serves Hq/Hkv query heads). With `causal`, query t attends to keys
/// s <= t + (S - T) (queries are the last T positions). `mask` is added to the scores and
/// broadcasts to [B, Hq, T, S] (bool masks: true = keep).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    double scale, bool causal,
                                    const std::optional<Tensor>& mask = std::nullopt);

// ---- shape, views and indexing -----------------------------------------------------------------
/// New shape with the same number of elements (one -1 is inferred). A view when strides allow.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x);
/// Reorders axes (a view; negative axes count from the end). Without `perm`, reverses them.
Tensor transpose(const Tensor& x, const std::vector<int>& perm);
Tensor transpose(const Tensor& x);
Tensor swapaxes(const Tensor& x, int a, int b);
/// Strided slice (a view): per axis [start, stop) with step > 0; negative indices count from the
/// end and are clamped like Python's.
Tensor slice(const Tensor& x, const std::vector<int64_t>& start, const std::vector<int64_t>& stop,
             const std::vector<int64_t>& step = {});
Tensor slice(const Tensor& x, int axis, int64_t start, int64_t stop, int64_t step = 1);
/// x with the region starting at `start` (per axis; negative counts from the end) with `step`
/// (default 1) replaced by `update`, whose shape is the region's extent (it may have fewer
/// leading axes, which broadcast) and which is cast to x's dtype. Functional: x is unchanged, but
/// when x has no other user its buffer is reused, so appending to a cache costs only the update.
Tensor slice_update(const Tensor& x, const Tensor& update, const std::vector<int64_t>& start,
                    const std::vector<int64_t>& step = {});
/// slice_update along one axis: x[..., start : start + update.shape[axis], ...] = update.
Tensor slice_update(const Tensor& x, const Tensor& update, int axis, int64_t start);
/// Broadcast to `shape` (a view with zero strides).
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor expand_dims(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x, int axis);
Tensor squeeze(const Tensor& x);
/// A dense row-major copy, or x itself when it already is one.
Tensor contiguous(const Tensor& x);
/// x on device `d` (a dense copy; x itself when it is already there). Ops need their tensor
/// operands on one device; one-element host constants and not-yet-evaluated full/arange/random
/// operands follow the others by themselves.
Tensor to(const Tensor& x, Device d);
Tensor concatenate(const std::vector<Tensor>& xs, int axis = 0);
Tensor stack(const std::vector<Tensor>& xs, int axis = 0);
/// Splits into `sections` equal parts along `axis` (views).
std::vector<Tensor> split(const Tensor& x, int sections, int axis = 0);
/// Splits at the given indices along `axis` (views).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& indices, int axis = 0);
/// Selects along `axis` with integer indices (any shape): out shape =
/// x.shape[:axis] + indices.shape + x.shape[axis+1:]. Negative indices count from the end;
/// out-of-range indices fail the evaluation with wick::Error.
Tensor take(const Tensor& x, const Tensor& indices, int axis);
/// NumPy take_along_axis / torch.gather: indices has x's rank; out has indices' shape.
Tensor take_along_axis(const Tensor& x, const Tensor& indices, int axis);
/// Rows of `weight` [vocab, dim] for integer `ids` of any shape: out ids.shape + [dim].
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace wick
