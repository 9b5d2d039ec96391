// FusedLinear through the primitives it replaces: the CPU's kernel, and the GPU's fallback when
// its GEMV kernel does not apply. Running the same primitives keeps the results identical to the
// unfused graph's on both devices.
#include <memory>
#include <sstream>

#include "backend/fused_linear.h"
#include "backend/output.h"
#include "graph/primitives.h"

namespace wick::detail {
namespace {

/// A node on out's device with a value of `p` over `ins`, computed now.
std::unique_ptr<Node> run_now(Primitive& p, std::vector<Node*> ins, Shape shape, const Node& like) {
  auto n = std::make_unique<Node>();
  n->shape = std::move(shape);
  n->dtype = like.dtype;
  n->device = like.device;
  if (like.device.type == Device::Type::cuda) p.eval_cuda(ins, *n);
  else p.eval_cpu(ins, *n);
  return n;
}

}  // namespace

void fused_linear_unfused(const FusedLinear& f, std::span<Node* const> in, Node& out) {
  const int64_t M = out.shape[0];
  const size_t G = f.widths.size(), w0 = f.norm ? 2 : 1;
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
  size_t next_addend = w0 + G;
  for (size_t g = 0; g < G; ++g) {
    std::vector<Node*> ins = {x, in[w0 + g]};
    if (f.has_addend[g]) ins.push_back(in[next_addend++]);
    Matmul mm;
    parts.push_back(run_now(mm, ins, {M, f.widths[g]}, out));
    part_ptrs.push_back(parts.back().get());
  }
  auto run_into = [&](Primitive& p) {
    if (out.device.type == Device::Type::cuda) p.eval_cuda(part_ptrs, out);
    else p.eval_cpu(part_ptrs, out);
  };
  if (f.gated) {
    // silu(gate)·up as the elementwise fusion computes it, each step rounded to the dtype.
    using I = FusedElementwise::Instr;
    FusedElementwise glu({I{FusedElementwise::Kind::unary, static_cast<uint8_t>(UnaryOp::silu), out.dtype, 0},
                          I{FusedElementwise::Kind::binary, static_cast<uint8_t>(BinaryOp::mul), out.dtype, 2, 1}},
                         false);
    run_into(glu);
    return;
  }
  Concatenate join(1);
  run_into(join);
}

void FusedLinear::eval_cpu(std::span<Node* const> in, Node& out) { fused_linear_unfused(*this, in, out); }

void FusedLinear::print(std::ostream& os) const {
  os << name() << "[" << (norm ? "rms_norm, " : "") << (gated ? "silu(gate)*up, " : "");
  for (size_t g = 0; g < widths.size(); ++g) os << (g ? " | " : "") << widths[g] << (has_addend[g] ? "+a" : "");
  os << "]";
}

}  // namespace wick::detail
