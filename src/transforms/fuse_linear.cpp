// compile's decoding pass: matmuls of a few rows that read the same input become one
// FusedLinear (q, k and v; gate and up), which also absorbs the rms_norm in front of them and,
// for gate and up, the silu(gate)·up after them. A decoding token then runs one GEMV kernel where
// it ran a normalisation, three GEMVs and an elementwise kernel: at one row each kernel costs
// its launch and a few memory latencies, far more than its arithmetic. A lora_linear (a served
// adapter's projection) joins such a group like a matmul, its rank-r path carried along.
#include <functional>

#include "graph/ops_common.h"
#include "transforms/tape.h"

namespace wick::detail {
namespace {

template <class P>
P* as(const Tape& t, Ref r) {
  return r.kind == Ref::Kind::op ? dynamic_cast<P*>(t.ops[r.index].prim.get()) : nullptr;
}

/// r with the reshapes in front of it skipped: the op whose elements r relabels.
Ref reshape_root(const Tape& t, Ref r) {
  while (as<Reshape>(t, r)) r = t.ops[r.index].ins[0];
  return r;
}

/// What a group member contributes: the product of x ([M, K] rows of the group's input) and a
/// weight W_i [N, K], with its addend and LoRA adapter.
struct Member {
  int64_t M = 0, K = 0, N = 0;
  bool lora = false;  // a lora_linear: ins = x, W [N, K], A, B, then its bias
  double scale = 0;
  std::optional<Ref> addend;
};

/// A matmul of x [M, K] (M at most kMaxRows) and a 2-d weight [K, N] with at most a bias [N] or an
/// addend [M, N] (as fuse_patterns leaves them), or a lora_linear of as few rows, all of the
/// output's float dtype.
std::optional<Member> candidate(const Tape& t, const TapeOp& op) {
  const bool mm = dynamic_cast<Matmul*>(op.prim.get()) != nullptr;
  auto* lora = dynamic_cast<LoraLinear*>(op.prim.get());
  if (!mm && !lora) return std::nullopt;
  if (op.dtype != DType::f32 && op.dtype != DType::bf16 && op.dtype != DType::f16)
    return std::nullopt;
  for (const Ref& r : op.ins)
    if (t.dtype_of(r) != op.dtype) return std::nullopt;
  Member m;
  if (lora) {
    const Shape w = t.shape_of(op.ins[1]);
    m = {numel(op.shape) / w[0], w[1], w[0], true, lora->scale, std::nullopt};
    if (lora->has_bias) m.addend = op.ins[4];
  } else {
    const Shape w = t.shape_of(op.ins[1]);
    if (op.shape.size() != 2 || w.size() != 2) return std::nullopt;
    m = {op.shape[0], w[0], w[1], false, 0, std::nullopt};
    if (op.ins.size() == 3) {
      Shape a = t.shape_of(op.ins[2]);
      if (a != op.shape && a != Shape{op.shape[1]}) return std::nullopt;
      m.addend = op.ins[2];
    }
  }
  if (m.M < 1 || m.M > FusedLinear::kMaxRows) return std::nullopt;
  return m;
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
  std::vector<std::optional<Member>> member(t.ops.size());
  std::vector<std::vector<uint32_t>> readers(t.ops.size());  // one entry per input slot
  for (uint32_t i = 0; i < t.ops.size(); ++i)
    for (const Ref& r : t.ops[i].ins)
      if (r.kind == Ref::Kind::op) readers[r.index].push_back(i);

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
    member[i] = candidate(t, op);
    if (!member[i]) continue;
    // Members read the same elements as rows [M, K], maybe through different reshapes.
    const Ref x = reshape_root(t, op.ins[0]);
    int g = -1;
    for (int k = static_cast<int>(groups.size()); k-- > 0 && g < 0;) {
      const Group& cand = groups[k];
      const uint32_t first = cand.members[0];
      if (cand.x != x || member[first]->M != member[i]->M || member[first]->K != member[i]->K ||
          t.ops[first].dtype != op.dtype ||
          cand.members.size() >= static_cast<size_t>(FusedLinear::kMaxGroups))
        continue;
      bool before = true;
      for (size_t a = 1; a < op.ins.size(); ++a) before = before && available(op.ins[a], first);
      if (before) g = k;
    }
    if (g < 0) {
      groups.push_back({});
      g = static_cast<int>(groups.size() - 1);
      groups[g].x = x;
    }
    groups[g].members.push_back(i);
    group_of[i] = g;
  }

  // Whether every read of op r, directly or through reshapes, is by a member of group g.
  std::function<bool(uint32_t, int)> read_by_group_only = [&](uint32_t r, int g) {
    uint32_t seen = 0;
    for (uint32_t j : readers[r]) {
      const bool through = as<Reshape>(t, Ref{Ref::Kind::op, j}) && read_by_group_only(j, g);
      if (group_of[j] != g && !through) return false;
      ++seen;
    }
    return seen == uses[r];  // a tape output is a use without a reader
  };

  // An rms_norm(·, g) whose only readers are the group becomes its prologue.
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    Group& g = groups[gi];
    const int64_t M = member[g.members[0]]->M, K = member[g.members[0]]->K;
    const Ref x = g.x;
    if (x.kind != Ref::Kind::op || !read_by_group_only(x.index, static_cast<int>(gi))) continue;
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
    const int64_t M = member[i]->M, K = member[i]->K;
    Ref x = mapped(g.x);
    if (t.shape_of(g.x) != Shape{M, K}) x = emit({std::make_shared<Reshape>(), {x}, {M, K}, op.dtype, op.device});
    std::vector<Ref> ins = {x};
    if (g.norm) ins.push_back(mapped(g.gamma));
    std::vector<int64_t> widths;
    std::vector<bool> has_addend;
    std::vector<std::optional<double>> lora_scale;
    for (uint32_t m : g.members) {
      const Member& mb = *member[m];
      Ref w = mapped(t.ops[m].ins[1]);
      // The fused op takes every weight as [K, N]: a lora_linear's W [N, K] as its transpose.
      if (mb.lora)
        w = emit({std::make_shared<Transpose>(std::vector<int>{1, 0}),
                  {w},
                  {K, mb.N},
                  op.dtype,
                  op.device});
      ins.push_back(w);
      widths.push_back(mb.N);
      has_addend.push_back(mb.addend.has_value());
      lora_scale.push_back(mb.lora ? std::optional<double>(mb.scale) : std::nullopt);
    }
    for (uint32_t m : g.members)
      if (member[m]->addend) ins.push_back(mapped(*member[m]->addend));
    for (uint32_t m : g.members)
      if (member[m]->lora) {
        ins.push_back(mapped(t.ops[m].ins[2]));
        ins.push_back(mapped(t.ops[m].ins[3]));
      }
    int64_t total = 0;
    for (int64_t w : widths) total += w;
    const Shape shape = {M, g.gated ? widths[0] : total};
    fused[gi] =
        emit({std::make_shared<FusedLinear>(g.norm, g.eps, g.gated, widths, has_addend, lora_scale),
              std::move(ins), shape, op.dtype, op.device});
    ++s.fused_patterns;
    // Members' own values: slices of the output in their shapes (a gated group's members have no
    // other reader).
    int64_t at = 0;
    for (size_t k = 0; k < g.members.size(); ++k) {
      const uint32_t m = g.members[k];
      emitted[m] = true;
      if (!g.gated) {
        Ref v = g.members.size() == 1 ? fused[gi]
                                      : emit({std::make_shared<Slice>(std::vector<int64_t>{0, at},
                                                                      std::vector<int64_t>{1, 1}),
                                              {fused[gi]},
                                              {M, widths[k]},
                                              op.dtype,
                                              op.device});
        if (t.ops[m].shape != Shape{M, widths[k]})
          v = emit({std::make_shared<Reshape>(), {v}, t.ops[m].shape, op.dtype, op.device});
        map[m] = v;
      }
      at += widths[k];
    }
  }
  for (Ref& r : t.outputs) r = mapped(r);
  t.ops = std::move(out);
  eliminate_dead(t);
}

}  // namespace wick::detail
