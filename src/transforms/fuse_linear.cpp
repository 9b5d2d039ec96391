// compile's decoding pass: matmuls of a few rows that read the same input become one
// FusedLinear (q, k and v; gate and up), which also absorbs the rms_norm in front of them or the
// gated product in front of a down projection. A decoding token then runs one GEMV kernel where
// it ran a normalisation and three: at one row each kernel costs its launch and a few memory
// latencies, far more than its arithmetic.
#include <functional>

#include "graph/ops_common.h"
#include "transforms/tape.h"

namespace wick::detail {
namespace {

using Prologue = FusedLinear::Prologue;

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
  Prologue prologue = Prologue::none;
  Ref x{}, gamma{};               // the fused op's input (before its prologue) and rms weight
  double eps = 0;
  int gated_from = -1;            // swiglu: the group whose output holds gate | up
  int64_t gated_offset = 0;       // ... starting at this column
};

/// Follows single-use reshapes back to their source.
Ref through_single_reshapes(const Tape& t, const std::vector<uint32_t>& uses, Ref r) {
  while (as<Reshape>(t, r) && uses[r.index] == 1) r = t.ops[r.index].ins[0];
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

  // Prologues: an rms_norm(·, g) whose only readers are the group, or silu(gate)·up where gate
  // and up are neighbouring members of an earlier group.
  for (Group& g : groups) {
    const TapeOp& head = t.ops[g.members[0]];
    const int64_t M = head.shape[0], K = t.shape_of(head.ins[1])[0];
    Ref x = g.x;
    if (x.kind != Ref::Kind::op || uses[x.index] != g.members.size()) continue;
    if (as<Reshape>(t, x)) {
      x = t.ops[x.index].ins[0];
      if (x.kind != Ref::Kind::op || uses[x.index] != 1) continue;
    }
    if (auto* rn = as<RmsNorm>(t, x); rn && rn->has_weight) {
      const TapeOp& n = t.ops[x.index];
      if (n.shape.back() != K || numel(n.shape) != M * K || t.shape_of(n.ins[1]) != Shape{K}) continue;
      g.prologue = Prologue::rms_norm;
      g.eps = rn->eps;
      g.x = n.ins[0];
      g.gamma = n.ins[1];
      continue;
    }
    auto* mul = as<Binary>(t, x);
    if (!mul || mul->op != BinaryOp::mul || numel(t.ops[x.index].shape) != M * K) continue;
    for (int side = 0; side < 2; ++side) {
      Ref act = t.ops[x.index].ins[side], other = t.ops[x.index].ins[1 - side];
      auto* u = as<Unary>(t, act);
      if (!u || u->op != UnaryOp::silu || uses[act.index] != 1 || t.ops[act.index].dtype != head.dtype) continue;
      Ref gate = through_single_reshapes(t, uses, t.ops[act.index].ins[0]);
      Ref up = through_single_reshapes(t, uses, other);
      if (gate.kind != Ref::Kind::op || up.kind != Ref::Kind::op || uses[gate.index] != 1 || uses[up.index] != 1)
        continue;
      int pg = group_of[gate.index];
      if (pg < 0 || pg != group_of[up.index]) continue;
      const std::vector<uint32_t>& pm = groups[pg].members;
      int64_t offset = 0;
      for (size_t k = 0; k + 1 < pm.size(); ++k) {
        if (pm[k] == gate.index && pm[k + 1] == up.index && t.ops[gate.index].shape == Shape{M, K} &&
            t.ops[up.index].shape == Shape{M, K}) {
          g.prologue = Prologue::swiglu;
          g.gated_from = pg;
          g.gated_offset = offset;
        }
        offset += t.ops[pm[k]].shape[1];
      }
      if (g.prologue == Prologue::swiglu) break;
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
    const int gi = group_of[i];
    const bool fuse = gi >= 0 && (groups[gi].members.size() > 1 || groups[gi].prologue != Prologue::none);
    if (!fuse) {
      mapped({Ref::Kind::op, i});
      continue;
    }
    const Group& g = groups[gi];
    if (g.members[0] != i) continue;  // mapped when the group's first member was reached
    const int64_t M = op.shape[0], K = t.shape_of(op.ins[1])[0];
    std::vector<Ref> ins;
    if (g.prologue == Prologue::swiglu) {
      Ref src = fused[g.gated_from];
      if (out[src.index].shape != Shape{M, 2 * K})
        src = emit({std::make_shared<Slice>(std::vector<int64_t>{0, g.gated_offset}, std::vector<int64_t>{1, 1}),
                    {src}, {M, 2 * K}, op.dtype, op.device});
      ins.push_back(src);
    } else {
      Ref x = mapped(g.x);
      if (t.shape_of(g.x) != Shape{M, K}) x = emit({std::make_shared<Reshape>(), {x}, {M, K}, op.dtype, op.device});
      ins.push_back(x);
      if (g.prologue == Prologue::rms_norm) ins.push_back(mapped(g.gamma));
    }
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
    fused[gi] = emit({std::make_shared<FusedLinear>(g.prologue, g.eps, widths, has_addend), std::move(ins), {M, total},
                      op.dtype, op.device});
    ++s.fused_patterns;
    int64_t at = 0;
    for (size_t k = 0; k < g.members.size(); ++k) {
      emitted[g.members[k]] = true;
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
