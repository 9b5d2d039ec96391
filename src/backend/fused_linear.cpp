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
  const size_t G = f.widths.size();
  const size_t w0 = f.prologue == FusedLinear::Prologue::rms_norm ? 2 : 1;
  const int64_t K = in[w0]->shape[0];
  std::unique_ptr<Node> xp, gate, up;
  Node* x = in[0];
  if (f.prologue == FusedLinear::Prologue::rms_norm) {
    RmsNorm norm(f.eps, true);
    xp = run_now(norm, {in[0], in[1]}, {M, K}, out);
    x = xp.get();
  } else if (f.prologue == FusedLinear::Prologue::swiglu) {
    Slice first({0, 0}, {1, 1}), second({0, K}, {1, 1});
    gate = run_now(first, {in[0]}, {M, K}, out);
    up = run_now(second, {in[0]}, {M, K}, out);
    // silu(gate)·up as the elementwise fusion computes it, each step rounded to the dtype.
    using I = FusedElementwise::Instr;
    FusedElementwise glu({I{FusedElementwise::Kind::unary, static_cast<uint8_t>(UnaryOp::silu), out.dtype, 0},
                          I{FusedElementwise::Kind::binary, static_cast<uint8_t>(BinaryOp::mul), out.dtype, 2, 1}},
                         false);
    xp = run_now(glu, {gate.get(), up.get()}, {M, K}, out);
    x = xp.get();
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
  Concatenate join(1);
  if (out.device.type == Device::Type::cuda) join.eval_cuda(part_ptrs, out);
  else join.eval_cpu(part_ptrs, out);
}

void FusedLinear::eval_cpu(std::span<Node* const> in, Node& out) { fused_linear_unfused(*this, in, out); }

void FusedLinear::print(std::ostream& os) const {
  static const char* names[] = {"", "rms_norm, ", "swiglu, "};
  os << name() << "[" << names[static_cast<int>(prologue)];
  for (size_t g = 0; g < widths.size(); ++g) os << (g ? " | " : "") << widths[g] << (has_addend[g] ? "+a" : "");
  os << "]";
}

}  // namespace wick::detail
