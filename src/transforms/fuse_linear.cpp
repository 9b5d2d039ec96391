// compile's decoding pass: matmuls of a few rows that read the same input become one
// FusedLinear (q, k and v; gate and up), which also absorbs the rms_norm in front of them and,
// for gate and up, the silu(gate)·up after them. A decoding token then runs one GEMV kernel where
// it ran a normalisation, three GEMVs and an elementwise kernel: at one row each kernel costs
// its launch and a few memory latencies, far more than its arithmetic.
#include <functional>

#include "graph/ops_common.h"
#include "transforms/tape.h"

namespace wick::detail {
namespace {

template <class P>
P* as(const Tape& t, Ref r) {
  return r.kind == Ref::Kind::op ? dynamic_cast<P*>(t.ops[r.index].prim.get()) : nullptr;
}

/// x [M, K] (M at most kMaxRows) times a 2-d weight [K, N], all of the output's float dtype,
/// with at most a bias [N] or an addend [M, N] (as fuse_patterns leaves them).
bool candidate(const Tape& t, const TapeOp& op) {
  if (!dynamic_cast<Matmul*>(op.prim.get()) || op.shape.size() != 2 || op.shape[0] > FusedLinear::kMaxRows)
    return false;
  if (op.dtype != DType::f32 && op.dtype != DType::bf16 && op.dtype != DType::f16) return false;
  for (const Ref& r : op.ins)
    if (t.dtype_of(r) != op.dtype) return false;
  if (t.shape_of(op.ins[1]).size() != 2) return false;
  if (op.ins.size() == 3) {
    Shape a = t.shape_of(op.ins[2]);
    if (a != op.shape && a != Shape{op.shape[1]}) return false;
  }
  return true;
}

struct Group {
  std::vector<uint32_t> members;  // ops, in tape order
  bool norm = false, gated = false;
  Ref x{}, gamma{};               // the fused op's input (before its norm) and the norm's weight
  double eps = 0;
};

/// Follows single-use reshapes back to their source, noting the reshapes in `passed`.
Ref through_single_reshapes(const Tape& t, const std::vector<uint32_t>& uses, Ref r, std::vector<uint32_t>& passed) {
  while (as<Reshape>(t, r) && uses[r.index] == 1) {
    passed.push_back(r.index);
    r = t.ops[r.index].ins[0];
  }
  return r;
}

}  // namespace

void fuse_linears(Tape& t, PassStats& s) {
  const std::vector<uint32_t> uses = t.use_counts();
  std::vector<Group> groups;
  std::vector<int> group_of(t.ops.size(), -1);

  // Matmuls over the same x join a group when every other input of theirs exists before the
  // group's first member, where the fused op will stand, or is a view that can be moved there
  // (a weight's transpose).
  std::function<bool(Ref, uint32_t)> available = [&](Ref r, uint32_t first) {
    if (r.kind != Ref::Kind::op || r.index < first) return true;
    if (!t.ops[r.index].prim->is_view()) return false;
    for (const Ref& in : t.ops[r.index].ins)
      if (!available(in, first)) return false;
    return true;
  };
  for (uint32_t i = 0; i < t.ops.size(); ++i) {
    const TapeOp& op = t.ops[i];
    if (!candidate(t, op)) continue;
    int g = -1;
    for (int k = static_cast<int>(groups.size()); k-- > 0 && g < 0;) {
      const Group& cand = groups[k];
      const uint32_t first = cand.members[0];
      if (t.ops[first].ins[0] != op.ins[0] || t.ops[first].dtype != op.dtype ||
          cand.members.size() >= static_cast<size_t>(FusedLinear::kMaxGroups))
        continue;
      bool before = true;
      for (size_t a = 1; a < op.ins.size(); ++a) before = before && available(op.ins[a], first);
      if (before) g = k;
    }
    if (g < 0) {
      groups.push_back({});
      g = static_cast<int>(groups.size() - 1);
      groups[g].x = op.ins[0];
    }
    groups[g].members.push_back(i);
    group_of[i] = g;
  }

  // An rms_norm(·, g) whose only readers are the group becomes its prologue.
  for (Group& g : groups) {
    const TapeOp& head = t.ops[g.members[0]];
    const int64_t M = head.shape[0], K = t.shape_of(head.ins[1])[0];
    Ref x = g.x;
    if (x.kind != Ref::Kind::op || uses[x.index] != g.members.size()) continue;
    if (as<Reshape>(t, x)) {
      x = t.ops[x.index].ins[0];
      if (x.kind != Ref::Kind::op || uses[x.index] != 1) continue;
    }
    auto* rn = as<RmsNorm>(t, x);
    if (!rn || !rn->has_weight) continue;
    const TapeOp& n = t.ops[x.index];
    if (n.shape.back() != K || numel(n.shape) != M * K || t.shape_of(n.ins[1]) != Shape{K}) continue;
    g.norm = true;
    g.eps = rn->eps;
    g.x = n.ins[0];
    g.gamma = n.ins[1];
  }

  // silu(gate)·up over a group of exactly gate and up (single-use products) becomes its gated
  // epilogue: the product op is then the group's output.
  std::vector<int> gated_by(t.ops.size(), -1);
  std::vector<bool> absorbed(t.ops.size(), false);  // the silu and reshapes between them
  for (uint32_t i = 0; i < t.ops.size(); ++i) {
    auto* mul = as<Binary>(t, Ref{Ref::Kind::op, i});
    if (!mul || mul->op != BinaryOp::mul) continue;
    for (int side = 0; side < 2; ++side) {
      Ref act = t.ops[i].ins[side], other = t.ops[i].ins[1 - side];
      auto* u = as<Unary>(t, act);
      if (!u || u->op != UnaryOp::silu || uses[act.index] != 1 || t.ops[act.index].dtype != t.ops[i].dtype) continue;
      std::vector<uint32_t> chain = {act.index};
      Ref gate = through_single_reshapes(t, uses, t.ops[act.index].ins[0], chain);
      Ref up = through_single_reshapes(t, uses, other, chain);
      if (gate.kind != Ref::Kind::op || up.kind != Ref::Kind::op || uses[gate.index] != 1 || uses[up.index] != 1)
        continue;
      const int g = group_of[gate.index];
      if (g < 0 || groups[g].gated || groups[g].members != std::vector<uint32_t>{gate.index, up.index}) continue;
      const TapeOp& head = t.ops[gate.index];
      if (t.ops[up.index].shape != head.shape || head.dtype != t.ops[i].dtype ||
          numel(t.ops[i].shape) != numel(head.shape))
        continue;
      groups[g].gated = true;
      gated_by[i] = g;
      for (uint32_t c : chain) absorbed[c] = true;
      break;
    }
  }

  std::vector<TapeOp> out;
  std::vector<Ref> map(t.ops.size());
  std::vector<Ref> fused(groups.size());
  auto emit = [&](TapeOp op) {
    out.push_back(std::move(op));
    return Ref{Ref::Kind::op, static_cast<uint32_t>(out.size() - 1)};
  };
  std::vector<bool> emitted(t.ops.size(), false);
  // An op's copy, after those of its inputs: views a group needs early are emitted on demand.
  std::function<Ref(Ref)> mapped = [&](Ref r) {
    if (r.kind != Ref::Kind::op) return r;
    if (!emitted[r.index]) {
      TapeOp copy = t.ops[r.index];
      for (Ref& in : copy.ins) in = mapped(in);
      map[r.index] = emit(std::move(copy));
      emitted[r.index] = true;
    }
    return map[r.index];
  };
  for (uint32_t i = 0; i < t.ops.size(); ++i) {
    const TapeOp& op = t.ops[i];
    if (absorbed[i]) continue;
    if (gated_by[i] >= 0) {
      // The gated product: the fused output, in the product's shape.
      Ref f = fused[gated_by[i]];
      map[i] = out[f.index].shape == op.shape ? f : emit({std::make_shared<Reshape>(), {f}, op.shape, op.dtype, op.device});
      emitted[i] = true;
      continue;
    }
    const int gi = group_of[i];
    const bool fuse = gi >= 0 && (groups[gi].members.size() > 1 || groups[gi].norm);
    if (!fuse) {
      mapped({Ref::Kind::op, i});
      continue;
    }
    const Group& g = groups[gi];
    if (g.members[0] != i) continue;  // mapped when the group's first member was reached
    const int64_t M = op.shape[0], K = t.shape_of(op.ins[1])[0];
    Ref x = mapped(g.x);
    if (t.shape_of(g.x) != Shape{M, K}) x = emit({std::make_shared<Reshape>(), {x}, {M, K}, op.dtype, op.device});
    std::vector<Ref> ins = {x};
    if (g.norm) ins.push_back(mapped(g.gamma));
    std::vector<int64_t> widths;
    std::vector<bool> has_addend;
    for (uint32_t m : g.members) {
      ins.push_back(mapped(t.ops[m].ins[1]));
      widths.push_back(t.ops[m].shape[1]);
      has_addend.push_back(t.ops[m].ins.size() == 3);
    }
    for (uint32_t m : g.members)
      if (t.ops[m].ins.size() == 3) ins.push_back(mapped(t.ops[m].ins[2]));
    int64_t total = 0;
    for (int64_t w : widths) total += w;
    const Shape shape = {M, g.gated ? widths[0] : total};
    fused[gi] = emit({std::make_shared<FusedLinear>(g.norm, g.eps, g.gated, widths, has_addend), std::move(ins), shape,
                      op.dtype, op.device});
    ++s.fused_patterns;
    // Members' own values: slices of the output (a gated group's members have no other reader).
    int64_t at = 0;
    for (size_t k = 0; k < g.members.size(); ++k) {
      emitted[g.members[k]] = true;
      if (!g.gated)
        map[g.members[k]] = g.members.size() == 1
                                ? fused[gi]
                                : emit({std::make_shared<Slice>(std::vector<int64_t>{0, at}, std::vector<int64_t>{1, 1}),
                                        {fused[gi]}, {M, widths[k]}, op.dtype, op.device});
      at += widths[k];
    }
  }
  for (Ref& r : t.outputs) r = mapped(r);
  t.ops = std::move(out);
  eliminate_dead(t);
}

}  // namespace wick::detail
