// Compile's fused primitives through the primitives they replace (see composed.h).
#include <memory>

#include "backend/composed.h"
#include "backend/output.h"
#include "graph/primitives.h"

namespace wick::detail {
namespace {

/// Evaluates `p` into `out` on out's device.
void run_into(Primitive& p, std::span<Node* const> ins, Node& out) {
  if (out.device.type == Device::Type::cuda) p.eval_cuda(ins, out);
  else p.eval_cpu(ins, out);
}

/// A node of `dtype` on `device` with a value of `p` over `ins`, computed now.
std::unique_ptr<Node> run_now(Primitive& p, std::vector<Node*> ins, Shape shape, DType dtype,
                              Device device) {
  auto n = std::make_unique<Node>();
  n->shape = std::move(shape);
  n->dtype = dtype;
  n->device = device;
  run_into(p, ins, *n);
  return n;
}

/// The same on like's device and of its dtype.
std::unique_ptr<Node> run_now(Primitive& p, std::vector<Node*> ins, Shape shape, const Node& like) {
  return run_now(p, std::move(ins), std::move(shape), like.dtype, like.device);
}

}  // namespace

void fused_linear_unfused(const FusedLinear& f, std::span<Node* const> in, Node& out) {
  const int64_t M = out.shape[0];
  const size_t G = f.widths.size(), w0 = f.first_weight();
  const int64_t K = in[w0]->shape[0];
  std::unique_ptr<Node> normed;
  Node* x = in[0];
  if (f.norm) {
    RmsNorm norm(f.eps, true);
    normed = run_now(norm, {in[0], in[1]}, {M, K}, out);
    x = normed.get();
  }
  std::vector<std::unique_ptr<Node>> parts;
  std::vector<Node*> part_ptrs;
  size_t next_addend = w0 + G, next_lora = f.first_adapter();
  for (size_t g = 0; g < G; ++g) {
    Node* addend = f.has_addend[g] ? in[next_addend++] : nullptr;
    if (f.lora_scale[g]) {
      // lora_linear takes W [N, K]: the weight's transpose, as a view.
      const Node& wt = *in[w0 + g];
      Node w;
      w.shape = {wt.shape[1], wt.shape[0]};
      w.dtype = wt.dtype;
      w.device = wt.device;
      make_view(w, wt, {wt.strides[1], wt.strides[0]}, wt.offset);
      std::vector<Node*> ins = {x, &w, in[next_lora], in[next_lora + 1]};
      next_lora += 2;
      if (addend) ins.push_back(addend);
      LoraLinear lora(*f.lora_scale[g], addend != nullptr);
      parts.push_back(run_now(lora, ins, {M, f.widths[g]}, out));
    } else {
      std::vector<Node*> ins = {x, in[w0 + g]};
      if (addend) ins.push_back(addend);
      Matmul mm;
      parts.push_back(run_now(mm, ins, {M, f.widths[g]}, out));
    }
    part_ptrs.push_back(parts.back().get());
  }
  if (f.gated) {
    // silu(gate)·up as the elementwise fusion computes it, each step rounded to the dtype.
    using I = FusedElementwise::Instr;
    FusedElementwise glu({I{FusedElementwise::Kind::unary, static_cast<uint8_t>(UnaryOp::silu), out.dtype, 0},
                          I{FusedElementwise::Kind::binary, static_cast<uint8_t>(BinaryOp::mul), out.dtype, 2, 1}},
                         false);
    run_into(glu, part_ptrs, out);
    return;
  }
  Concatenate join(1);
  run_into(join, part_ptrs, out);
}

std::unique_ptr<Node> rotated(const std::vector<float>& freq, Node* x, Node* position) {
  Rope r(freq, 0);
  return run_now(r, {x, position}, x->shape, *x);
}

void attention_rotating_q(const Attention& a, std::span<Node* const> in, Node& out) {
  std::unique_ptr<Node> q = rotated(a.rope_q, in[0], in.back());
  std::vector<Node*> ins(in.begin(), in.end() - 1);
  ins[0] = q.get();
  Attention plain(a.scale, a.causal, a.has_mask);
  run_into(plain, ins, out);
}

void cached_attention_unfused(const CachedAttention& c, std::span<Node* const> in, Node& out) {
  const size_t m = c.has_mask ? 1 : 0;
  Node* position = in[3 + m];
  WriteAt write_k(2, c.inv_freq), write_v(2);
  std::unique_ptr<Node> kc = run_now(write_k, {in[1], in[4 + m], position}, in[1]->shape, *in[1]);
  std::unique_ptr<Node> vc = run_now(write_v, {in[2], in[5 + m], position}, in[2]->shape, *in[2]);
  std::vector<Node*> ins = {in[0], kc.get(), vc.get()};
  if (c.has_mask) ins.push_back(in[3]);
  // A folded PositionMask is made again, as a view broadcast over batch and heads.
  std::unique_ptr<Node> mask, view;
  if (c.window >= 0) {
    const int64_t T = in[0]->shape[2], S = in[1]->shape[2];
    PositionMask pm(c.window);
    mask = run_now(pm, {position}, {1, 1, T, S}, DType::f32, out.device);
    view = std::make_unique<Node>();
    view->shape = {in[0]->shape[0], in[0]->shape[1], T, S};
    view->dtype = DType::f32;
    view->device = out.device;
    make_view(*view, *mask, {0, 0, S, 1}, 0);
    ins.push_back(view.get());
  }
  ins.push_back(position);
  Attention a(c.scale, false, c.has_mask || c.window >= 0, c.inv_freq);
  run_into(a, ins, out);
}

void CachedAttention::eval_cpu(std::span<Node* const> in, Node& out) { cached_attention_unfused(*this, in, out); }

void FusedLinear::eval_cpu(std::span<Node* const> in, Node& out) { fused_linear_unfused(*this, in, out); }

void FusedLinear::print(std::ostream& os) const {
  os << name() << "[" << (norm ? "rms_norm, " : "") << (gated ? "silu(gate)*up, " : "");
  for (size_t g = 0; g < widths.size(); ++g)
    os << (g ? " | " : "") << widths[g] << (has_addend[g] ? "+a" : "")
       << (lora_scale[g] ? "+lora" : "");
  os << "]";
}

}  // namespace wick::detail
