// CUDA implementations of the row primitives (softmax, norms, RoPE, cross-entropy), attention
// and the gathers with their gradients.
#include <algorithm>

#include "backend/composed.h"
#include "backend/cuda/glue.h"

namespace wick::detail {
using namespace cuda;

namespace {

/// Rows of a tensor whose last axis has n elements.
int64_t rows_of(const Node& n) {
  int64_t last = n.shape.empty() ? 1 : n.shape.back();
  return last ? n.size() / last : 0;
}

int64_t last_dim(const Node& n) {
  return n.shape.empty() ? 1 : n.shape.back();
}

}  // namespace

void Softmax::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hold;
  const void* x = dense(*in[0], hold);
  alloc_output(out);
  softmax(out.dtype, x, out.raw(), rows_of(out), last_dim(out), log);
}

void ScaledMaskedSoftmax::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hold;
  const void* x = dense(*in[0], hold);
  alloc_output(out);
  int64_t n = last_dim(out);
  Shape lead(out.shape.begin(), out.shape.end() - (out.shape.empty() ? 0 : 1));
  Spaced<1> m;
  const void* mask = nullptr;
  int64_t mi = 0;
  if (has_mask) {
    const Node& mk = *in[1];
    Strides ml = aligned_strides(mk, out.shape.size());
    mi = n == 1 ? 0 : ml.back();
    ml.pop_back();
    m = make_space<1>(lead, {ml});
    mask = mk.raw();
  }
  scaled_masked_softmax(out.dtype, x, out.raw(), rows_of(out), n, scale, mask, m.space, m.walks[0],
                        mi);
}

void RmsNorm::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hx, hw;
  const void* x = dense(*in[0], hx);
  const void* w = has_weight ? dense(*in[1], hw) : nullptr;
  alloc_output(out);
  rms_norm(out.dtype, x, out.raw(), rows_of(out), last_dim(out), eps, w,
           has_weight ? in[1]->dtype : out.dtype);
}

void RmsNormGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hx, hg, hw;
  const void* x = dense(*in[0], hx);
  const void* g = dense(*in[1], hg);
  const void* w = has_weight ? dense(*in[2], hw) : nullptr;
  alloc_output(out);
  rms_norm_grad(out.dtype, x, in[1]->dtype, g, out.raw(), rows_of(out), last_dim(out), eps, w,
                has_weight ? in[2]->dtype : out.dtype);
}

void LayerNorm::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hx, hw, hb;
  const void* x = dense(*in[0], hx);
  size_t k = 1;
  const Node* wn = has_weight ? in[k++] : nullptr;
  const Node* bn = has_bias ? in[k++] : nullptr;
  const void* w = wn ? dense(*wn, hw) : nullptr;
  const void* b = bn ? dense(*bn, hb) : nullptr;
  alloc_output(out);
  layer_norm(out.dtype, x, out.raw(), rows_of(out), last_dim(out), eps, w,
             wn ? wn->dtype : out.dtype, b, bn ? bn->dtype : out.dtype);
}

void Rope::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  if (x.shape.size() < 2 || x.shape.back() % 2 != 0 ||
      static_cast<int64_t>(inv_freq.size()) * 2 != x.shape.back())
    throw Error("rope: x " + shape_str(x.shape) +
                " needs [..., T, D] with D even and D/2 frequencies");
  on(out);
  int64_t D = x.shape.back(), T = x.shape[x.shape.size() - 2];
  alloc_output(out);
  // Heads split from a projection's output ([B, T, H, D] seen as [B, H, T, D]) are read in place.
  if (x.shape.size() == 4 && in.size() == 1 && (x.strides[3] == 1 || D == 1)) {
    const int64_t xs[3] = {x.strides[0], x.strides[1], x.strides[2]};
    if (rope_rows(out.dtype, x.raw(), xs, out.raw(), x.shape[0], x.shape[1], T, D, inv_freq.data(),
                  offset))
      return;
  }
  std::shared_ptr<Storage> hold;
  const void* xp = dense(x, hold);
  int64_t lead = T * D != 0 ? x.size() / (T * D) : 0;
  // A position input (see rope_at) is read by the kernel, so a replayed graph sees its new value.
  const int64_t* position = in.size() > 1 ? static_cast<const int64_t*>(in[1]->raw()) : nullptr;
  rope(out.dtype, xp, out.raw(), lead, T, D, inv_freq.data(), offset, position);
}

namespace {

/// softmax(scale·q·kᵀ + mask, causal) into `probs` (dtype pt, [B, Hq, T, S]): one batched GEMM
/// per (batch, KV head) (a group's query rows are contiguous in a dense q) and one row kernel.
void attention_probs(const AttentionArgs& a, const void* q, DType qt, const Node& k, void* probs,
                     DType pt) {
  const int64_t group = a.Hq / a.Hkv, batch = a.B * a.Hkv;
  Mat Q;
  Q.ptr = q;
  Q.ld = a.D;
  Q.batch_stride = group * a.T * a.D;
  auto scores = detail::allocate(static_cast<size_t>(a.B * a.Hq * a.T * a.S) * 4, k.device);
  gemm(qt, group * a.T, a.S, a.D, batch, Q, transposed(as_mat(k, a.S, a.D, batch)), scores->ptr,
       a.scale, 0.0, DType::f32);
  attention_softmax(static_cast<const float*>(scores->ptr), probs, pt, a.B, a.Hq, a.T, a.S,
                    a.causal, static_cast<const float*>(a.mask), a.ms);
}

/// The shape fields of an attention over q [B,Hq,T,D], k [B,Hkv,S,D] and an optional f32 mask.
AttentionArgs attention_args(const Node& q, const Node& k, const Node* mask, double scale,
                             bool causal) {
  AttentionArgs a{};
  a.B = q.shape[0];
  a.Hq = q.shape[1];
  a.Hkv = k.shape[1];
  a.T = q.shape[2];
  a.S = k.shape[2];
  a.D = q.shape[3];
  a.scale = static_cast<float>(scale);
  a.causal = causal;
  if (mask) {
    if (mask->dtype != DType::f32)
      throw Error("scaled_dot_product_attention: the mask must be f32");
    a.mask = mask->raw();
    for (int d = 0; d < 4; ++d) a.ms[d] = mask->shape[d] == 1 ? 0 : mask->strides[d];
  }
  return a;
}

/// attention_args with the operands' pointers and strides, writing into `out`.
AttentionArgs attention_operands(const Node& q, const Node& k, const Node& v, const Node* mask, double scale,
                                 bool causal, Node& out) {
  AttentionArgs a = attention_args(q, k, mask, scale, causal);
  a.q = q.raw();
  a.k = k.raw();
  a.v = v.raw();
  for (int d = 0; d < 4; ++d) {
    a.qs[d] = q.strides[d];
    a.ks[d] = k.strides[d];
    a.vs[d] = v.strides[d];
  }
  a.t = out.dtype;
  a.out = out.raw();
  return a;
}

/// q's RoPE in the online kernel, at the position `in`.
void rotate_q_online(AttentionArgs& a, const std::vector<float>& freq, const Node& position) {
  a.rope_position = static_cast<const int64_t*>(position.raw());
  a.position_untouched = untouched(position);
  a.rope_half = a.D / 2;
  std::copy(freq.begin(), freq.end(), a.rope_freq);
}

/// The online-softmax kernels. Few rows over a long cache (decoding): each row's keys are split
/// over blocks, and the blocks' partial softmaxes merged.
void online_attention(AttentionArgs& a, Device device) {
  std::shared_ptr<Storage> partials;
  const int64_t rows = a.B * a.Hq * a.T;
  a.split = attention_split(a);
  if (a.split > 1) {
    partials = detail::allocate(static_cast<size_t>(rows * a.split * (a.D + 2)) * sizeof(float), device);
    a.partials = static_cast<float*>(partials->ptr);
  }
  attention(a);
}

}  // namespace

void AttentionProbs::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  const Node& q = *in[0];
  AttentionArgs a = attention_args(q, *in[1], has_mask ? in[2] : nullptr, scale, causal);
  std::shared_ptr<Storage> hold;
  const void* qp = dense(q, hold);  // the GEMM needs a group's query rows contiguous
  alloc_output(out);
  attention_probs(a, qp, q.dtype, *in[1], out.raw(), out.dtype);
}

void AttentionGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  // The kernels read rows 16 bytes at a time: operands that are not dense and aligned are copied.
  const Node* n[5];
  std::unique_ptr<Node> copies[5];
  for (int i = 0; i < 5; ++i) {
    n[i] = in[i];
    if (in[i]->contiguous() && reinterpret_cast<uintptr_t>(in[i]->raw()) % 16 == 0) continue;
    copies[i] = std::make_unique<Node>();
    Node& c = *copies[i];
    c.shape = in[i]->shape;
    c.dtype = in[i]->dtype;
    c.device = in[i]->device;
    c.storage = detail::allocate(std::max<size_t>(1, in[i]->size() * itemsize(c.dtype)), c.device);
    c.strides = contiguous_strides(c.shape);
    auto sp = make_space<2>(c.shape, {c.strides, in[i]->strides});
    cast(c.dtype, in[i]->raw(), sp.walks[1], c.dtype, c.raw(), sp.walks[0], sp.space);
    n[i] = &c;
  }
  const Node &q = *n[0], &k = *n[1], &v = *n[2], &o = *n[3], &g = *n[4];
  FlashGradArgs f{};
  f.a = attention_args(q, k, nullptr, scale, causal);
  f.a.q = q.raw();
  f.a.k = k.raw();
  f.a.v = v.raw();
  f.a.t = q.dtype;
  f.o = o.raw();
  f.g = g.raw();
  for (int d = 0; d < 4; ++d) {
    f.a.qs[d] = q.strides[d];
    f.a.ks[d] = k.strides[d];
    f.a.vs[d] = v.strides[d];
    f.os[d] = o.strides[d];
    f.gs[d] = g.strides[d];
  }
  if (o.dtype != q.dtype || g.dtype != q.dtype || !flash_attention_grad_fits(f))
    throw Error("attention_grad: arguments the tensor-core kernel does not take (q " + shape_str(q.shape) + " " +
                dtype_name(q.dtype) + ")");
  alloc_output(out);
  // f32 sums of dQ, dK and dV laid out as the output is, then the row statistics.
  const int64_t rows = f.a.B * f.a.Hq * f.a.T, kv = f.a.B * f.a.Hkv * f.a.S, total = out.size();
  auto scratch = detail::allocate(static_cast<size_t>(total + 2 * rows) * sizeof(float), out.device);
  f.dq = static_cast<float*>(scratch->ptr);
  f.dk = f.dq + rows * f.a.D;
  f.dv = f.dk + kv * f.a.D;
  f.lse = f.dq + total;
  f.dvec = f.lse + rows;
  // The forward's log-sum-exp rows, when O is still the block it wrote them beside.
  const Node& o_in = *in[3];
  f.lse_ready = o_in.storage->side_tag.load(std::memory_order_relaxed) == flash_stats_tag(f.a) &&
                o_in.offset == 0 && o_in.contiguous() &&
                o_in.shape == Shape{f.a.B, f.a.Hq, f.a.T, f.a.D};
  if (f.lse_ready)
    f.lse =
        reinterpret_cast<float*>(static_cast<char*>(o_in.storage->ptr) + o_in.storage->side_offset);
  flash_attention_grad(f);
  // Each was summed in f32 (over key tiles, query rows and grouped heads); rounded once here.
  Space sp;
  sp.nd = 1;
  sp.shape[0] = sp.numel = total;
  Walk unit;
  unit.s[0] = 1;
  cast(DType::f32, f.dq, unit, out.dtype, out.raw(), unit, sp);
}

void SoftmaxGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hp, hg;
  const void* p = dense(*in[0], hp);
  const void* g = dense(*in[1], hg);
  alloc_output(out);
  int64_t n = last_dim(out);
  softmax_grad(out.dtype, p, g, out.raw(), rows_of(out), n, static_cast<float>(scale));
}

void Attention::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& q = *in[0];
  const Node& k = *in[1];
  const Node& v = *in[2];
  if (q.shape.size() != 4 || k.shape.size() != 4 || v.shape != k.shape || k.shape[1] == 0 ||
      q.shape[1] % k.shape[1] != 0 || (has_mask && in[3]->shape.size() != 4))
    throw Error("scaled_dot_product_attention: kernel got q " + shape_str(q.shape) + ", k " +
                shape_str(k.shape) + ", v " + shape_str(v.shape));
  on(out);
  alloc_output(out);
  AttentionArgs a = attention_operands(q, k, v, has_mask ? in[3] : nullptr, scale, causal, out);
  // Prefill and training: the flash kernel where it applies, else two batched GEMMs around a
  // softmax over the materialised scores, on the tensor cores; the scores must fit a budget.
  // Decoding (T = 1) and longer sequences use the online-softmax kernel, which never
  // materialises them.
  const size_t score_bytes = static_cast<size_t>(a.B * a.Hq * a.T * a.S) * 4;
  const bool gemms = a.T > 1 && q.contiguous() && score_bytes <= (size_t(1) << 30) && a.t != DType::f64;
  if (!rope_q.empty()) {
    // The online kernel rotates q as it reads it; the GEMM path rotates it first.
    if (gemms || a.D / 2 > static_cast<int64_t>(std::size(a.rope_freq)) || 2 * rope_q.size() != static_cast<size_t>(a.D))
      return attention_rotating_q(*this, in, out);
    rotate_q_online(a, rope_q, *in.back());
  }
  // Many query rows in a half type: the tensor-core kernel, which keeps the scores on chip.
  if (a.T > 1 && flash_attention_fits(a)) {
    if (a.mask) {  // (the tensor-core gradient takes no mask, so nothing would read lse)
      flash_attention(a);
      return;
    }
    // Each query row's log-sum-exp goes after O in its block: the gradient (AttentionGrad)
    // reads it there instead of running its stats pass, a third of the forward's work again.
    const size_t o_bytes = (static_cast<size_t>(out.size()) * itemsize(out.dtype) + 15) / 16 * 16;
    out.storage = detail::allocate(o_bytes + static_cast<size_t>(a.B * a.Hq * a.T) * sizeof(float),
                                   out.device);
    a.out = out.raw();
    flash_attention(a, reinterpret_cast<float*>(static_cast<char*>(out.storage->ptr) + o_bytes));
    out.storage->side_offset = o_bytes;
    out.storage->side_tag.store(flash_stats_tag(a), std::memory_order_relaxed);
    return;
  }
  if (gemms) {
    auto probs =
        detail::allocate(static_cast<size_t>(a.B * a.Hq * a.T * a.S) * itemsize(a.t), out.device);
    attention_probs(a, q.raw(), q.dtype, k, probs->ptr, a.t);
    const int64_t group = a.Hq / a.Hkv, batch = a.B * a.Hkv;
    Mat Pm;
    Pm.ptr = probs->ptr;
    Pm.ld = a.S;
    Pm.batch_stride = group * a.T * a.S;
    gemm(a.t, group * a.T, a.D, a.S, batch, Pm, as_mat(v, a.S, a.D, batch), out.raw(), 1.0, 0.0);
    return;
  }
  online_attention(a, out.device);
}

void CachedAttention::eval_cuda(std::span<Node* const> in, Node& out) {
  const size_t m = has_mask ? 1 : 0;
  const Node& q = *in[0];
  const Node& kc = *in[1];
  const Node& vc = *in[2];
  const Node& position = *in[3 + m];
  const Node& k = *in[4 + m];
  const Node& v = *in[5 + m];
  // One kernel for a single query row per head over dense caches; otherwise the writes, then
  // attention.
  const int64_t D = q.shape.size() == 4 ? q.shape[3] : 0;
  const bool one_kernel = q.shape.size() == 4 && q.shape[2] == 1 && kc.shape.size() == 4 && vc.shape == kc.shape &&
                          k.shape == Shape{kc.shape[0], kc.shape[1], 1, D} && v.shape == k.shape &&
                          kc.shape[3] == D && kc.contiguous() && vc.contiguous() && k.dtype == kc.dtype &&
                          v.dtype == kc.dtype && q.dtype == kc.dtype && out.dtype == kc.dtype &&
                          kc.dtype != DType::f64 && D <= 256 && 2 * inv_freq.size() == static_cast<size_t>(D) &&
                          q.shape[1] % kc.shape[1] == 0;
  if (!one_kernel) {
    cached_attention_unfused(*this, in, out);
  } else {
    on(out);
    alloc_output(out);
    AttentionArgs a = attention_operands(q, kc, vc, has_mask ? in[3] : nullptr, scale, false, out);
    rotate_q_online(a, inv_freq, position);
    a.position_window = window;
    a.k_new = k.raw();
    a.v_new = v.raw();
    for (int d = 0; d < 4; ++d) {
      a.kns[d] = k.strides[d];
      a.vns[d] = v.strides[d];
    }
    a.err = error_flag();
    a.cache_untouched = untouched(kc) && untouched(vc);
    online_attention(a, out.device);
  }
  // Either way the step's rows were written into the caches in place.
  mark_written(kc);
  mark_written(vc);
}

void CrossEntropy::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hx, hl;
  const void* x = dense(*in[0], hx);
  const void* labels = dense(*in[1], hl);
  alloc_output(out);
  cross_entropy(in[0]->dtype, x, in[1]->dtype, labels, out.raw(), out.dtype, in[0]->shape[0],
                in[0]->shape[1], ignore_index, smoothing);
}

void CrossEntropyGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hx, hl, hg;
  const void* x = dense(*in[0], hx);
  const void* labels = dense(*in[1], hl);
  const Node& g = *in[2];
  const void* gp = dense(g, hg);
  alloc_output(out);
  // g may be one value for every row (a broadcast 0-d cotangent).
  if (g.size() == 1 && in[0]->shape[0] != 1) {
    auto ones = make_space<2>({in[0]->shape[0]}, {Strides{1}, Strides{0}});
    auto exp = detail::allocate(in[0]->shape[0] * itemsize(g.dtype), out.device);
    cast(g.dtype, gp, ones.walks[1], g.dtype, exp->ptr, ones.walks[0], ones.space);
    hg = exp;
    gp = exp->ptr;
  }
  cross_entropy_grad(out.dtype, x, in[1]->dtype, labels, gp, g.dtype, out.raw(), in[0]->shape[0],
                     in[0]->shape[1], ignore_index, smoothing);
}

void Take::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  if (x.shape.size() > static_cast<size_t>(kMaxDims)) throw Error("take: more than 8 axes on CUDA");
  on(out);
  std::shared_ptr<Storage> hi;
  const void* idx = dense(*in[1], hi);
  alloc_output(out);
  Space xs;
  Walk xw;
  xs.nd = static_cast<int>(x.shape.size());
  for (size_t d = 0; d < x.shape.size(); ++d) {
    xs.shape[d] = x.shape[d];
    xw.s[d] = x.strides[d];
  }
  xs.numel = x.size();
  take(x.dtype, x.raw(), xs, xw, axis, in[1]->dtype, idx, in[1]->size(), out.raw());
}

void TakeAlongAxis::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& x = *in[0];
  const Node& ind = *in[1];
  on(out);
  alloc_output(out);
  Strides xs = aligned_strides(x, out.shape.size());
  int64_t ax_stride = x.strides[axis];
  xs[axis] = 0;
  auto s = make_space<3>(out.shape, {out.strides, aligned_strides(ind, out.shape.size()), xs});
  take_along_axis(x.dtype, x.raw(), s.walks[2], ax_stride, x.shape[axis], ind.dtype, ind.raw(),
                  s.walks[1], out.raw(), s.space);
}

void TakeGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  on(out);
  std::shared_ptr<Storage> hg, hi;
  const void* g = dense(*in[0], hg);
  const void* idx = dense(*in[1], hi);
  alloc_output(out);
  int64_t pre = 1, post = 1;
  for (int d = 0; d < axis; ++d) pre *= out.shape[d];
  for (size_t d = axis + 1; d < out.shape.size(); ++d) post *= out.shape[d];
  take_grad(out.dtype, g, in[1]->dtype, idx, pre, in[1]->size(), post, out.shape[axis], out.raw());
}

void TakeAlongAxisGrad::eval_cuda(std::span<Node* const> in, Node& out) {
  const Node& g = *in[0];
  const Node& idx = *in[1];
  on(out);
  alloc_output(out);
  Strides os = out.strides;
  int64_t ax_stride = os[axis];
  os[axis] = 0;
  size_t nd = g.shape.size();
  auto s = make_space<3>(g.shape, {os, aligned_strides(idx, nd), g.strides});
  take_along_axis_grad(out.dtype, g.raw(), s.walks[2], idx.dtype, idx.raw(), s.walks[1], out.raw(),
                       out.size(), s.walks[0], ax_stride, out.shape[axis], s.space);
}

}  // namespace wick::detail
