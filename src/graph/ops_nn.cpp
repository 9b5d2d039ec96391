// Builders of matmul and the neural-network ops (linear, LoRA, softmax, norms, RoPE, attention).
#include <cmath>
#include <limits>

#include "graph/ops_common.h"

namespace wick {

using namespace detail;

namespace {

DType float_promote(const char* op, std::initializer_list<const Tensor*> ts) {
  DType t = ts.begin()[0]->dtype();
  for (const Tensor* x : ts) t = promote_types(t, x->dtype());
  return float_dtype(t);
}

void require_vector(const Tensor& w, int64_t d, const char* op, const char* what, const Tensor& x) {
  if (w.ndim() != 1 || w.shape()[0] != d)
    throw Error(std::string(op) + ": " + what + " " + shape_str(w.shape()) + " does not match x " +
                shape_str(x.shape()) + " (expected [" + std::to_string(d) + "])");
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  require_defined("matmul", {&a_in, &b_in});
  if (a_in.ndim() == 0 || b_in.ndim() == 0)
    throw Error("matmul: " + shape_str(a_in.shape()) + " x " + shape_str(b_in.shape()) +
                ": 0-d operands are not allowed");
  Tensor a = a_in.ndim() == 1 ? expand_dims(a_in, 0) : a_in;
  Tensor b = b_in.ndim() == 1 ? expand_dims(b_in, 1) : b_in;
  int64_t k = a.shape().back(), kb = b.shape()[b.ndim() - 2];
  if (k != kb)
    throw Error("matmul: " + shape_str(a_in.shape()) + " x " + shape_str(b_in.shape()) +
                ": inner dims " + std::to_string(k) + " != " + std::to_string(kb));
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  int64_t m = a.shape()[a.ndim() - 2], n = b.shape().back();
  DType t = float_promote("matmul", {&a, &b});
  if (!is_floating(promote_types(a.dtype(), b.dtype()))) t = promote_types(a.dtype(), b.dtype());
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {m, k});
  sb.insert(sb.end(), {k, n});
  so.insert(so.end(), {m, n});
  Tensor out = build<Matmul>(so, t, {broadcast_view(cast(a, t), sa), broadcast_view(cast(b, t), sb)});
  if (a_in.ndim() == 1) out = squeeze(out, -2);
  if (b_in.ndim() == 1) out = squeeze(out, -1);
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias) {
  require_defined("linear", {&x, &w});
  if (w.ndim() != 2 || x.ndim() == 0 || x.shape().back() != w.shape()[1])
    throw Error("linear: x " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                " do not match (weight is [out, in])");
  // Flatten the leading axes so GEMM sees one [tokens, in] operand instead of a batch of rows.
  Shape os = x.shape();
  os.back() = w.shape()[0];
  Tensor y = matmul(reshape(x, {-1, x.shape().back()}), transpose(w));
  if (bias) {
    require_vector(*bias, w.shape()[0], "linear", "bias", x);
    y = y + *bias;
  }
  return reshape(y, os);
}

Tensor lora_linear(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias,
                   const Tensor& a, const Tensor& b, double scale) {
  require_defined("lora_linear", {&x, &w, &a, &b});
  bool ok = w.ndim() == 2 && a.ndim() == 2 && b.ndim() == 2 && x.ndim() >= 1;
  if (ok) {
    int64_t in = w.shape()[1], out = w.shape()[0], r = a.shape()[0];
    ok = x.shape().back() == in && a.shape()[1] == in && b.shape()[0] == out && b.shape()[1] == r;
  }
  if (!ok)
    throw Error("lora_linear: x " + shape_str(x.shape()) + ", W " + shape_str(w.shape()) + ", A " +
                shape_str(a.shape()) + ", B " + shape_str(b.shape()) +
                " do not match (W [out,in], A [r,in], B [out,r])");
  // The base layer sets the dtype: f32 adapter weights on a bf16 model run in bf16 (their
  // gradients flow back to f32 through the cast), as the frozen weights dominate the cost.
  float_promote("lora_linear", {&a, &b});
  DType t = float_promote("lora_linear", {&x, &w});
  std::vector<Tensor> ins = {cast(x, t), cast(w, t), cast(a, t), cast(b, t)};
  if (bias) {
    require_vector(*bias, w.shape()[0], "lora_linear", "bias", x);
    ins.push_back(cast(*bias, t));
  }
  Shape os = x.shape();
  os.back() = w.shape()[0];
  return build<LoraLinear>(os, t, std::move(ins), scale, bias.has_value());
}

namespace {
Tensor softmax_impl(const Tensor& x, int axis, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  require_defined(name, {&x});
  if (x.ndim() == 0) throw Error(std::string(name) + ": 0-d tensor");
  int a = normalize_axis(axis, x.ndim(), name);
  DType t = float_dtype(x.dtype());
  // The kernel works on the last axis; other axes go there and back as views.
  Tensor xt = a == x.ndim() - 1 ? cast(x, t) : swapaxes(cast(x, t), a, -1);
  Tensor y = build<Softmax>(xt.shape(), t, {xt}, log);
  return a == x.ndim() - 1 ? y : swapaxes(y, a, -1);
}
}  // namespace

Tensor softmax(const Tensor& x, int axis) { return softmax_impl(x, axis, false); }
Tensor log_softmax(const Tensor& x, int axis) { return softmax_impl(x, axis, true); }

Tensor rms_norm(const Tensor& x, const std::optional<Tensor>& w, double eps) {
  require_defined("rms_norm", {&x});
  if (x.ndim() == 0) throw Error("rms_norm: 0-d tensor");
  DType t = float_dtype(x.dtype());
  std::vector<Tensor> ins = {cast(x, t)};
  if (w) {
    require_vector(*w, x.shape().back(), "rms_norm", "weight", x);
    t = float_dtype(promote_types(t, w->dtype()));
    ins[0] = cast(x, t);
    ins.push_back(cast(*w, t));
  }
  return build<RmsNorm>(x.shape(), t, std::move(ins), eps, w.has_value());
}

Tensor layer_norm(const Tensor& x, const std::optional<Tensor>& w, const std::optional<Tensor>& b,
                  double eps) {
  require_defined("layer_norm", {&x});
  if (x.ndim() == 0) throw Error("layer_norm: 0-d tensor");
  DType t = float_dtype(x.dtype());
  if (w) t = float_dtype(promote_types(t, w->dtype()));
  if (b) t = float_dtype(promote_types(t, b->dtype()));
  std::vector<Tensor> ins = {cast(x, t)};
  if (w) {
    require_vector(*w, x.shape().back(), "layer_norm", "weight", x);
    ins.push_back(cast(*w, t));
  }
  if (b) {
    require_vector(*b, x.shape().back(), "layer_norm", "bias", x);
    ins.push_back(cast(*b, t));
  }
  return build<LayerNorm>(x.shape(), t, std::move(ins), eps, w.has_value(), b.has_value());
}

namespace {
/// x checked against the frequencies and cast to the dtype RoPE computes in.
Tensor rope_operand(const Tensor& x, const std::vector<float>& inv_freq) {
  require_defined("rope", {&x});
  if (x.ndim() < 2 || x.shape().back() % 2 != 0)
    throw Error("rope: x " + shape_str(x.shape()) + " must be [..., T, D] with D even");
  if (static_cast<int64_t>(inv_freq.size()) * 2 != x.shape().back())
    throw Error("rope: " + std::to_string(inv_freq.size()) + " frequencies for head dim " +
                std::to_string(x.shape().back()) + " (need D/2)");
  return cast(x, float_dtype(x.dtype()));
}
}  // namespace

Tensor rope(const Tensor& x, const std::vector<float>& inv_freq, int64_t offset) {
  Tensor xc = rope_operand(x, inv_freq);
  if (offset < 0) throw Error("rope: negative position offset");
  return build<Rope>(x.shape(), xc.dtype(), {xc}, inv_freq, offset);
}

Tensor detail::rope_at(const Tensor& x, const std::vector<float>& inv_freq, const Tensor& position) {
  Tensor xc = rope_operand(x, inv_freq);
  return build<Rope>(x.shape(), xc.dtype(), {xc, position_operand(position, "rope")}, inv_freq, 0);
}

Tensor detail::position_mask(const Tensor& position, int64_t tokens, int64_t keys, int64_t window) {
  if (tokens < 1 || keys < 1 || window < 0)
    throw Error("position_mask: tokens " + std::to_string(tokens) + ", keys " +
                std::to_string(keys) + " and window " + std::to_string(window) +
                " must be positive (a window may be 0: none)");
  return build<PositionMask>({1, 1, tokens, keys}, DType::f32,
                             {position_operand(position, "position_mask")}, window);
}

Tensor rope(const Tensor& x, double theta, int64_t offset) {
  require_defined("rope", {&x});
  if (x.ndim() < 1) throw Error("rope: 0-d tensor");
  int64_t d = x.shape().back();
  std::vector<float> f(static_cast<size_t>(std::max<int64_t>(d / 2, 0)));
  // Same float arithmetic as HF: theta ** (arange(0, d, 2) / d) in f32, then reciprocal.
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(d));
  return rope(x, f, offset);
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                    bool causal, const std::optional<Tensor>& mask) {
  require_defined("scaled_dot_product_attention", {&q, &k, &v});
  auto fail = [&](const std::string& why) {
    throw Error("scaled_dot_product_attention: q " + shape_str(q.shape()) + ", k " +
                shape_str(k.shape()) + ", v " + shape_str(v.shape()) + ": " + why);
  };
  if (q.ndim() != 4 || k.ndim() != 4 || v.ndim() != 4) fail("expected 4-d [B, H, T, D] tensors");
  if (k.shape() != v.shape()) fail("k and v differ");
  if (q.shape()[0] != k.shape()[0] || q.shape()[3] != k.shape()[3]) fail("batch or head dim differ");
  if (k.shape()[1] == 0 || q.shape()[1] % k.shape()[1] != 0) fail("query heads must be a multiple of kv heads");
  DType t = float_promote("scaled_dot_product_attention", {&q, &k, &v});
  std::vector<Tensor> ins = {cast(q, t), cast(k, t), cast(v, t)};
  if (mask) {
    Shape full = {q.shape()[0], q.shape()[1], q.shape()[2], k.shape()[2]};
    Tensor m = *mask;
    if (m.dtype() == DType::boolean) {
      m = where(m, scalar(0.0, DType::f32), scalar(-std::numeric_limits<double>::infinity(), DType::f32));
    } else {
      m = cast(m, DType::f32);
    }
    broadcast_shapes(m.shape(), full, "scaled_dot_product_attention mask");
    if (m.ndim() > 4) fail("mask " + shape_str(m.shape()) + " has more than 4 dims");
    ins.push_back(broadcast_view(m, full));
  }
  return build<Attention>(q.shape(), t, std::move(ins), scale, causal, mask.has_value());
}

}  // namespace wick
