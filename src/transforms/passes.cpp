// Graph passes of compile that do not fuse: dead-node elimination, merging of common
// subexpressions, constant folding and the memory plan's peak.
#include <algorithm>
#include <map>
#include <typeinfo>

#include "graph/ops_common.h"
#include "transforms/tape.h"
#include "wick/runtime.h"

namespace wick::detail {
namespace {

constexpr size_t kMaxFoldBytes = size_t(1) << 20;  // larger constants stay ops (memory)

void remap_refs(std::vector<Ref>& refs, const std::vector<Ref>& map) {
  for (Ref& r : refs)
    if (r.kind == Ref::Kind::op) r = map[r.index];
}

/// Re-emits ops in order, replacing each op's refs through `map` (filled as ops are emitted).
template <class Decide>
void rewrite(Tape& t, Decide&& decide) {
  std::vector<TapeOp> old = std::move(t.ops);
  t.ops.clear();
  std::vector<Ref> map(old.size());
  for (size_t i = 0; i < old.size(); ++i) {
    TapeOp op = std::move(old[i]);
    remap_refs(op.ins, map);
    map[i] = decide(op);
  }
  remap_refs(t.outputs, map);
}

std::optional<double> constant_scalar(const Tape& t, Ref r) {
  if (r.kind != Ref::Kind::constant || t.constants[r.index].numel() != 1) return std::nullopt;
  return t.constants[r.index].item<double>();
}

}  // namespace

void eliminate_dead(Tape& t) {
  std::vector<bool> live(t.ops.size(), false);
  for (const Ref& r : t.outputs)
    if (r.kind == Ref::Kind::op) live[r.index] = true;
  for (size_t i = t.ops.size(); i-- > 0;)
    if (live[i])
      for (const Ref& r : t.ops[i].ins)
        if (r.kind == Ref::Kind::op) live[r.index] = true;
  size_t i = 0;
  rewrite(t, [&](TapeOp& op) {
    Ref out{};
    if (live[i]) {
      out = {Ref::Kind::op, static_cast<uint32_t>(t.ops.size())};
      t.ops.push_back(std::move(op));
    }
    ++i;
    return out;
  });
}

void merge_common(Tape& t, PassStats& s) {
  // Candidates share the primitive's type, inputs, shape and dtype; is_equivalent decides.
  std::map<std::pair<std::string, std::vector<uint64_t>>, std::vector<uint32_t>> seen;
  rewrite(t, [&](TapeOp& op) {
    std::vector<uint64_t> key;
    for (const Ref& r : op.ins) key.push_back((uint64_t(r.kind) << 32) | r.index);
    for (int64_t d : op.shape) key.push_back(static_cast<uint64_t>(d));
    key.push_back(static_cast<uint64_t>(op.dtype));
    const Primitive& prim = *op.prim;
    auto& bucket = seen[{typeid(prim).name(), key}];
    for (uint32_t j : bucket)
      if (t.ops[j].prim->is_equivalent(*op.prim)) {
        ++s.merged;
        return Ref{Ref::Kind::op, j};
      }
    uint32_t idx = static_cast<uint32_t>(t.ops.size());
    bucket.push_back(idx);
    t.ops.push_back(std::move(op));
    return Ref{Ref::Kind::op, idx};
  });
}

void fold_constants(Tape& t, PassStats& s) {
  // Ops whose inputs are all constants are evaluated once, together, and become constants;
  // random draws are left alone (they are constant per trace anyway, and may be large).
  std::vector<Tensor> folded;
  std::vector<std::pair<size_t, Tensor>> pending;  // constant index -> value being computed
  rewrite(t, [&](TapeOp& op) {
    bool all_const = !op.ins.empty() || dynamic_cast<Full*>(op.prim.get()) || dynamic_cast<Arange*>(op.prim.get());
    for (const Ref& r : op.ins) all_const = all_const && r.kind == Ref::Kind::constant;
    size_t bytes = static_cast<size_t>(numel(op.shape)) * itemsize(op.dtype);
    if (all_const && bytes <= kMaxFoldBytes && !dynamic_cast<Random*>(op.prim.get())) {
      std::vector<Tensor> ins;
      for (const Ref& r : op.ins) ins.push_back(t.constants[r.index]);
      Tensor v = make_op(op, std::move(ins));
      t.constants.push_back(v);
      pending.emplace_back(t.constants.size() - 1, v);
      ++s.folded;
      return Ref{Ref::Kind::constant, static_cast<uint32_t>(t.constants.size() - 1)};
    }
    // x·1, x/1, x+0, x-0 where the scalar does not change x's shape or dtype.
    if (auto* b = dynamic_cast<Binary*>(op.prim.get()); b && op.ins.size() == 2) {
      for (int side = 0; side < 2; ++side) {
        Ref keep = op.ins[1 - side];
        auto c = constant_scalar(t, op.ins[side]);
        if (!c || t.shape_of(keep) != op.shape || t.dtype_of(keep) != op.dtype) continue;
        bool identity = (b->op == BinaryOp::mul && *c == 1) || (b->op == BinaryOp::add && *c == 0) ||
                        (side == 1 && b->op == BinaryOp::div && *c == 1) ||
                        (side == 1 && b->op == BinaryOp::sub && *c == 0);
        // Constants are evaluated lazily above; only already-known scalars are used here.
        if (identity) {
          ++s.folded;
          return keep;
        }
      }
    }
    t.ops.push_back(std::move(op));
    return Ref{Ref::Kind::op, static_cast<uint32_t>(t.ops.size() - 1)};
  });
  std::vector<Tensor> vals;
  for (auto& [i, v] : pending) vals.push_back(v);
  if (!vals.empty()) eval(vals);
  eliminate_dead(t);
}

size_t plan_peak_bytes(const Tape& t) {
  // Last use of each op, then a walk in order: a view allocates nothing and keeps its source.
  std::vector<size_t> last(t.ops.size(), 0);
  for (size_t i = 0; i < t.ops.size(); ++i)
    for (const Ref& r : t.ops[i].ins)
      if (r.kind == Ref::Kind::op) last[r.index] = std::max(last[r.index], i);
  for (const Ref& r : t.outputs)
    if (r.kind == Ref::Kind::op) last[r.index] = t.ops.size();
  // A view's storage belongs to its source: extend the source's life to the view's.
  std::vector<size_t> owner(t.ops.size());
  for (size_t i = 0; i < t.ops.size(); ++i) {
    owner[i] = i;
    const TapeOp& op = t.ops[i];
    if (op.prim->is_view() && !op.ins.empty() && op.ins[0].kind == Ref::Kind::op) owner[i] = owner[op.ins[0].index];
  }
  for (size_t i = t.ops.size(); i-- > 0;)
    if (owner[i] != i) last[owner[i]] = std::max(last[owner[i]], last[i]);
  std::vector<std::vector<size_t>> frees(t.ops.size() + 1);
  for (size_t i = 0; i < t.ops.size(); ++i)
    if (owner[i] == i && !t.ops[i].prim->is_view()) frees[last[i]].push_back(i);
  size_t live = 0, peak = 0;
  for (size_t i = 0; i < t.ops.size(); ++i) {
    if (owner[i] == i && !t.ops[i].prim->is_view()) live += static_cast<size_t>(numel(t.ops[i].shape)) * itemsize(t.ops[i].dtype);
    peak = std::max(peak, live);
    for (size_t j : frees[i]) live -= static_cast<size_t>(numel(t.ops[j].shape)) * itemsize(t.ops[j].dtype);
  }
  return peak;
}

}  // namespace wick::detail
