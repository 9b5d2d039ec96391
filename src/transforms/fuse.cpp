// compile's fusion passes: pattern fusion (softmax(s·x + mask), rms_norm·w, LoRA linear, matmul
// + bias or residual, RoPE into the cache write and the attention that follow it, a decoding
// step's cache writes and position mask into its attention) and elementwise-chain fusion into
// FusedElementwise.
#include <algorithm>
#include <functional>

#include "graph/ops_common.h"
#include "transforms/tape.h"

namespace wick::detail {
namespace {

template <class P>
P* as(const Tape& t, Ref r) {
  return r.kind == Ref::Kind::op ? dynamic_cast<P*>(t.ops[r.index].prim.get()) : nullptr;
}

std::optional<double> scalar_value(const Tape& t, Ref r) {
  if (r.kind != Ref::Kind::constant || t.constants[r.index].numel() != 1) return std::nullopt;
  return t.constants[r.index].item<double>();
}

/// Follows reshapes back to their source.
Ref through_reshapes(const Tape& t, Ref r) {
  while (as<Reshape>(t, r)) r = t.ops[r.index].ins[0];
  return r;
}

bool is_matrix_transpose(const Tape& t, Ref r, Ref* src) {
  auto* tr = as<Transpose>(t, r);
  if (!tr || tr->perm != std::vector<int>{1, 0}) return false;
  *src = t.ops[r.index].ins[0];
  return true;
}

/// Matmul(x, Wᵀ) with W 2-d: returns true and sets x, W.
bool match_xwt(const Tape& t, Ref r, Ref* x, Ref* w) {
  if (!as<Matmul>(t, r) || t.ops[r.index].shape.size() != 2) return false;
  *x = t.ops[r.index].ins[0];
  return is_matrix_transpose(t, t.ops[r.index].ins[1], w);
}

/// The window of the PositionMask at `pos` whose [T, S] values attention mask `r` broadcasts
/// (the op's own shape: T rows, S keys), or -1 for any other mask.
int64_t position_mask_window(const Tape& t, Ref r, Ref pos, int64_t T, int64_t S) {
  if (as<BroadcastTo>(t, r)) r = t.ops[r.index].ins[0];
  auto* m = as<PositionMask>(t, r);
  if (!m || t.ops[r.index].ins[0] != pos) return -1;
  const Shape& shape = t.ops[r.index].shape;
  return shape[2] == T && shape[3] == S ? m->window : -1;
}

}  // namespace

void fuse_patterns(Tape& t, PassStats& s) {
  std::vector<uint32_t> uses = t.use_counts();
  auto single = [&](Ref r) { return r.kind == Ref::Kind::op && uses[r.index] == 1; };
  std::vector<TapeOp> out;
  std::vector<Ref> map(t.ops.size());
  auto emit = [&](TapeOp op) {
    out.push_back(std::move(op));
    return Ref{Ref::Kind::op, static_cast<uint32_t>(out.size() - 1)};
  };
  auto mapped = [&](Ref r) { return r.kind == Ref::Kind::op ? map[r.index] : r; };

  for (size_t i = 0; i < t.ops.size(); ++i) {
    const TapeOp& op = t.ops[i];
    // write_at(buf, rope_at(u, p), p) and attention(rope_at(q, p), ...) of a decoding step: the
    // rows are rotated as they are written or read, one kernel fewer each.
    auto position_rope = [&](Ref r) -> Rope* {
      auto* rope = as<Rope>(t, r);
      return rope && single(r) && rope->offset == 0 && t.ops[r.index].ins.size() == 2 ? rope : nullptr;
    };
    if (auto* w = dynamic_cast<WriteAt*>(op.prim.get()); w && w->rope.empty()) {
      const Ref u = op.ins[1];
      Rope* r = position_rope(u);
      if (r && t.ops[u.index].ins[1] == op.ins[2] && w->axis == static_cast<int>(op.shape.size()) - 2) {
        map[i] = emit({std::make_shared<WriteAt>(w->axis, r->inv_freq),
                       {mapped(op.ins[0]), mapped(t.ops[u.index].ins[0]), mapped(op.ins[2])}, op.shape, op.dtype,
                       op.device});
        ++s.fused_patterns;
        continue;
      }
    }
    // attention(rope_at(q, p), write_at(kc, rope_at(k, p), p), write_at(vc, v, p), mask): the
    // attention kernel writes the caches too, two kernels fewer.
    if (auto* a = dynamic_cast<Attention*>(op.prim.get()); a && !a->causal && op.shape.size() == 4) {
      // q's rows and RoPE (fused already, or the op that feeds it), and the position.
      Ref q = op.ins[0], pos{};
      std::vector<float> freq = a->rope_q;
      if (!freq.empty()) {
        pos = op.ins.back();
      } else if (Rope* r = position_rope(q)) {
        freq = r->inv_freq;
        pos = t.ops[q.index].ins[1];
        q = t.ops[q.index].ins[0];
      }
      auto* wk = as<WriteAt>(t, op.ins[1]);
      auto* wv = as<WriteAt>(t, op.ins[2]);
      if (!freq.empty() && wk && wv && single(op.ins[1]) && single(op.ins[2]) && wk->axis == 2 && wv->axis == 2 &&
          wv->rope.empty()) {
        const TapeOp& K = t.ops[op.ins[1].index];
        const TapeOp& V = t.ops[op.ins[2].index];
        Ref k = K.ins[1];
        std::vector<float> kfreq = wk->rope;
        if (Rope* r = kfreq.empty() ? position_rope(k) : nullptr; r && t.ops[k.index].ins[1] == pos) {
          kfreq = r->inv_freq;
          k = t.ops[k.index].ins[0];
        }
        if (kfreq == freq && K.ins[2] == pos && V.ins[2] == pos) {
          // A step's PositionMask at this position is applied by the kernel from the position
          // (no mask kernels before the first layer's attention, no mask loads in any).
          const int64_t window =
              a->has_mask ? position_mask_window(t, op.ins[3], pos, op.shape[2], K.shape[2])
                          : int64_t(-1);
          const bool has_mask = a->has_mask && window < 0;
          std::vector<Ref> ins = {mapped(q), mapped(K.ins[0]), mapped(V.ins[0])};
          if (has_mask) ins.push_back(mapped(op.ins[3]));
          for (Ref r : {pos, k, V.ins[1]}) ins.push_back(mapped(r));
          map[i] = emit({std::make_shared<CachedAttention>(a->scale, has_mask, freq, window), ins,
                         op.shape, op.dtype, op.device});
          ++s.fused_patterns;
          continue;
        }
      }
    }
    if (auto* a = dynamic_cast<Attention*>(op.prim.get()); a && a->rope_q.empty()) {
      if (Rope* r = position_rope(op.ins[0])) {
        const TapeOp& rq = t.ops[op.ins[0].index];
        std::vector<Ref> ins = {mapped(rq.ins[0])};
        for (size_t k = 1; k < op.ins.size(); ++k) ins.push_back(mapped(op.ins[k]));
        ins.push_back(mapped(rq.ins[1]));
        map[i] = emit({std::make_shared<Attention>(a->scale, a->causal, a->has_mask, r->inv_freq), ins, op.shape,
                       op.dtype, op.device});
        ++s.fused_patterns;
        continue;
      }
    }
    // softmax(x·s + mask), softmax(x·s), softmax(x + mask) on the last axis.
    if (auto* sm = dynamic_cast<Softmax*>(op.prim.get()); sm && !sm->log) {
      Ref in = op.ins[0], mask{}, x = in;
      bool has_mask = false;
      double scale = 1.0;
      auto* add = as<Binary>(t, in);
      if (add && add->op == BinaryOp::add && single(in) && t.dtype_of(t.ops[in.index].ins[1]) == op.dtype &&
          t.ops[in.index].shape == op.shape && t.shape_of(t.ops[in.index].ins[0]) == op.shape) {
        x = t.ops[in.index].ins[0];
        mask = t.ops[in.index].ins[1];
        has_mask = true;
      }
      auto* mul = as<Binary>(t, x);
      if (mul && mul->op == BinaryOp::mul && (single(x) || x == in)) {
        auto c = scalar_value(t, t.ops[x.index].ins[1]);
        Ref base = t.ops[x.index].ins[0];
        if (c && t.shape_of(base) == op.shape && t.dtype_of(base) == op.dtype) {
          scale = *c;
          x = base;
        }
      }
      if (has_mask || scale != 1.0) {
        std::vector<Ref> ins = {mapped(x)};
        if (has_mask) {
          Ref m = mapped(mask);
          if (t.shape_of(mask) != op.shape) m = emit({std::make_shared<BroadcastTo>(), {m}, op.shape, op.dtype});
          ins.push_back(m);
        }
        map[i] = emit({std::make_shared<ScaledMaskedSoftmax>(scale, has_mask), ins, op.shape, op.dtype});
        ++s.fused_patterns;
        continue;
      }
    }
    if (auto* b = dynamic_cast<Binary*>(op.prim.get()); b && b->op == BinaryOp::mul) {
      // rms_norm(x) · w with w a vector over the last axis.
      for (int side = 0; side < 2; ++side) {
        Ref n = op.ins[side], w = op.ins[1 - side];
        auto* rn = as<RmsNorm>(t, n);
        if (!rn || rn->has_weight || !single(n) || t.ops[n.index].shape != op.shape) continue;
        Shape ws = t.shape_of(w);
        bool vector = t.dtype_of(w) == op.dtype && !ws.empty() && ws.back() == op.shape.back() &&
                      numel(ws) == ws.back();
        if (!vector) continue;
        Ref wv = mapped(w);
        if (ws.size() != 1) wv = emit({std::make_shared<Reshape>(), {wv}, {ws.back()}, op.dtype});
        map[i] = emit({std::make_shared<RmsNorm>(rn->eps, true), {mapped(t.ops[n.index].ins[0]), wv}, op.shape, op.dtype});
        ++s.fused_patterns;
        goto next;
      }
    }
    if (auto* b = dynamic_cast<Binary*>(op.prim.get()); b && b->op == BinaryOp::add) {
      // x·Wᵀ + s·((x·Aᵀ)·Bᵀ), possibly through the reshapes linear() adds.
      for (int side = 0; side < 2; ++side) {
        Ref base = through_reshapes(t, op.ins[side]), delta = op.ins[1 - side];
        Ref x, w, p, bt, x2, a;
        if (!match_xwt(t, base, &x, &w) || uses[base.index] != 1) continue;
        double scale = 1.0;
        Ref d = delta;
        if (auto* m = as<Binary>(t, d); m && m->op == BinaryOp::mul && single(d)) {
          const auto& mi = t.ops[d.index].ins;
          auto c = scalar_value(t, mi[1]);
          int other = 0;
          if (!c) {
            c = scalar_value(t, mi[0]);
            other = 1;
          }
          if (!c) continue;
          scale = *c;
          d = mi[other];
        }
        d = through_reshapes(t, d);
        if (!single(d) || !match_xwt(t, d, &p, &bt)) continue;
        Ref inner = through_reshapes(t, p);
        if (!single(inner) || !match_xwt(t, inner, &x2, &a)) continue;
        if (through_reshapes(t, x2) != through_reshapes(t, x)) continue;
        if (t.dtype_of(x) != op.dtype || t.dtype_of(w) != op.dtype || t.dtype_of(a) != op.dtype ||
            t.dtype_of(bt) != op.dtype)
          continue;
        Shape flat = t.ops[base.index].shape;
        Ref lora = emit({std::make_shared<LoraLinear>(scale, false), {mapped(x), mapped(w), mapped(a), mapped(bt)}, flat, op.dtype});
        map[i] = flat == op.shape ? lora : emit({std::make_shared<Reshape>(), {lora}, op.shape, op.dtype});
        ++s.fused_patterns;
        goto next;
      }
    }
    if (auto* b = dynamic_cast<Binary*>(op.prim.get()); b && b->op == BinaryOp::add) {
      // matmul(x, w) + b, possibly through the reshapes linear() adds, with b a vector over the
      // last axis (a bias) or of the sum's shape (a residual connection): one matmul with b as
      // a third input, added as the product is written.
      for (int side = 0; side < 2; ++side) {
        Ref m = op.ins[side], other = op.ins[1 - side];
        bool ok = true;
        while (ok && as<Reshape>(t, m)) {
          ok = single(m);
          m = t.ops[m.index].ins[0];
        }
        if (!ok || !as<Matmul>(t, m) || !single(m) || t.ops[m.index].ins.size() != 2 ||
            t.ops[m.index].dtype != op.dtype || t.dtype_of(other) != op.dtype)
          continue;
        const Shape ms = t.ops[m.index].shape, bs = t.shape_of(other);
        if (ms.back() != op.shape.back() || numel(ms) != numel(op.shape)) continue;
        Ref addend = mapped(other);
        if (bs == op.shape) {
          if (ms != op.shape) addend = emit({std::make_shared<Reshape>(), {addend}, ms, op.dtype});
        } else if (!bs.empty() && bs.back() == ms.back() && numel(bs) == bs.back()) {
          if (bs.size() != 1) addend = emit({std::make_shared<Reshape>(), {addend}, {bs.back()}, op.dtype});
        } else {
          continue;
        }
        const std::vector<Ref>& mi = t.ops[m.index].ins;
        Ref fused = emit({std::make_shared<Matmul>(), {mapped(mi[0]), mapped(mi[1]), addend}, ms, op.dtype});
        map[i] = ms == op.shape ? fused : emit({std::make_shared<Reshape>(), {fused}, op.shape, op.dtype});
        ++s.fused_patterns;
        goto next;
      }
    }
    {
      TapeOp copy = op;
      for (Ref& r : copy.ins) r = mapped(r);
      map[i] = emit(std::move(copy));
    }
  next:;
  }
  for (Ref& r : t.outputs) r = mapped(r);
  t.ops = std::move(out);
  eliminate_dead(t);
}

void fuse_activations(Tape& t, PassStats& s) {
  const std::vector<uint32_t> uses = t.use_counts();
  // alias[i]: what the users of op i read instead (op i, an activation, joined its product).
  std::vector<std::optional<Ref>> alias(t.ops.size());
  for (size_t i = 0; i < t.ops.size(); ++i) {
    const TapeOp& op = t.ops[i];
    auto* u = dynamic_cast<Unary*>(op.prim.get());
    if (!u || (u->op != UnaryOp::relu && u->op != UnaryOp::gelu_tanh) || !is_floating(op.dtype) ||
        op.dtype == DType::f64)
      continue;
    // relu(x·W [+ bias]), possibly through the reshape linear() adds: the product takes the
    // activation (elementwise, so it commutes with the reshape) when nothing else reads it.
    const Ref in = op.ins[0];
    Ref m = in;
    if (as<Reshape>(t, m) && uses[m.index] == 1) m = t.ops[m.index].ins[0];
    auto* mm = as<Matmul>(t, m);
    if (!mm || mm->act || uses[m.index] != 1 || t.ops[m.index].dtype != op.dtype) continue;
    const TapeOp& product = t.ops[m.index];
    if (product.ins.size() == 3 && t.shape_of(product.ins[2]) != Shape{product.shape.back()})
      continue;
    t.ops[m.index].prim = std::make_shared<Matmul>(u->op);
    alias[i] = in;
    ++s.fused_patterns;
  }
  auto redirect = [&](Ref& r) {
    if (r.kind == Ref::Kind::op && alias[r.index]) r = *alias[r.index];
  };
  for (TapeOp& op : t.ops)
    for (Ref& r : op.ins) redirect(r);
  for (Ref& r : t.outputs) redirect(r);
  eliminate_dead(t);
}

namespace {

enum class RegClass { none, f32, f64 };

/// The register class an op computes in when it can join a fused chain.
RegClass fusable(const Tape& t, const TapeOp& op) {
  auto cls = [](DType d) {
    switch (d) {
      case DType::f32:
      case DType::f16:
      case DType::bf16: return RegClass::f32;
      case DType::f64: return RegClass::f64;
      case DType::boolean: return RegClass::none;  // neutral
      default: return RegClass::f64;             // marker, rejected below
    }
  };
  if (!dynamic_cast<Unary*>(op.prim.get()) && !dynamic_cast<Binary*>(op.prim.get()) &&
      !dynamic_cast<Where*>(op.prim.get()) && !dynamic_cast<AsType*>(op.prim.get()))
    return RegClass::none;
  RegClass c = RegClass::none;
  std::vector<DType> types = {op.dtype};
  for (const Ref& r : op.ins) types.push_back(t.dtype_of(r));
  for (DType d : types) {
    if (d == DType::i32 || d == DType::i64) return RegClass::none;
    RegClass k = cls(d);
    if (k == RegClass::none) continue;
    if (c != RegClass::none && c != k) return RegClass::none;
    c = k;
  }
  return c == RegClass::none ? RegClass::f32 : c;  // all-bool chains use float registers
}

/// Whether op j, whose value `readers` fused chains would each read, is better recomputed in
/// each of them: it reads one tensor (a unary op, a cast, or a binary op with a one-element
/// constant), and reading that tensor in every chain moves no more bytes than writing j's value
/// and reading it back. silu(gate) of a training step is the case: the forward's product and the
/// backward's both recompute it from gate, and its value is never stored.
bool recomputable(const Tape& t, uint32_t j, size_t readers) {
  const TapeOp& op = t.ops[j];
  Ref src = op.ins[0];
  if (dynamic_cast<Binary*>(op.prim.get())) {
    auto scalar = [&](Ref r) {
      return r.kind == Ref::Kind::constant && t.constants[r.index].numel() == 1;
    };
    if (op.ins.size() != 2 || scalar(op.ins[0]) == scalar(op.ins[1])) return false;
    src = scalar(op.ins[0]) ? op.ins[1] : op.ins[0];
  } else if (!dynamic_cast<Unary*>(op.prim.get()) && !dynamic_cast<AsType*>(op.prim.get())) {
    return false;
  }
  const size_t in = itemsize(t.dtype_of(src)), out = itemsize(op.dtype);
  return in * (readers - 1) <= out * (readers + 1);
}

}  // namespace

void fuse_elementwise(Tape& t, PassStats& s) {
  std::vector<RegClass> cls(t.ops.size());
  for (size_t i = 0; i < t.ops.size(); ++i) cls[i] = fusable(t, t.ops[i]);
  // group[i]: the op whose fused kernel computes op i (itself when it is a root). Walking last
  // to first, an op joins a group when every one of its consumers belongs to that group, it is
  // not an output, and it computes in the same registers over the same shape: then its value
  // never needs to exist in memory.
  std::vector<std::vector<uint32_t>> consumers(t.ops.size());
  for (uint32_t i = 0; i < t.ops.size(); ++i)
    for (const Ref& r : t.ops[i].ins)
      if (r.kind == Ref::Kind::op && (consumers[r.index].empty() || consumers[r.index].back() != i))
        consumers[r.index].push_back(i);
  std::vector<bool> is_output(t.ops.size(), false);
  for (const Ref& r : t.outputs)
    if (r.kind == Ref::Kind::op) is_output[r.index] = true;
  std::vector<uint32_t> group(t.ops.size());
  std::vector<bool> absorbed(t.ops.size(), false), recompute(t.ops.size(), false);
  for (uint32_t j = static_cast<uint32_t>(t.ops.size()); j-- > 0;) {
    group[j] = j;
    if (cls[j] == RegClass::none || is_output[j] || consumers[j].empty()) continue;
    auto joins = [&](uint32_t c) {
      return !recompute[c] && cls[c] == cls[j] && t.ops[c].shape == t.ops[j].shape;
    };
    uint32_t g = group[consumers[j][0]];
    bool ok = joins(g);
    for (uint32_t c : consumers[j]) ok = ok && group[c] == g && joins(c);
    if (ok) {
      group[j] = g;
      absorbed[j] = true;
    } else if (recomputable(t, j, consumers[j].size()) &&
               std::all_of(consumers[j].begin(), consumers[j].end(), joins)) {
      recompute[j] = absorbed[j] = true;
    }
  }
  std::vector<std::vector<uint32_t>> members(t.ops.size());
  for (uint32_t i = 0; i < t.ops.size(); ++i)
    if (!recompute[i]) members[group[i]].push_back(i);
  // An op recomputed in several groups joins each of them, in tape order.
  for (uint32_t j = 0; j < t.ops.size(); ++j) {
    if (!recompute[j]) continue;
    for (uint32_t c : consumers[j]) {
      std::vector<uint32_t>& m = members[group[c]];
      auto at = std::lower_bound(m.begin(), m.end(), j);
      if (at == m.end() || *at != j) m.insert(at, j);
    }
  }

  std::vector<TapeOp> out;
  std::vector<Ref> map(t.ops.size());
  std::vector<uint32_t> mark(t.ops.size(), UINT32_MAX);  // the group being built: its members
  auto mapped = [&](Ref r) { return r.kind == Ref::Kind::op ? map[r.index] : r; };
  for (uint32_t i = 0; i < t.ops.size(); ++i) {
    if (absorbed[i]) continue;
    const TapeOp& op = t.ops[i];
    if (members[i].size() < 2) {
      TapeOp copy = op;
      for (Ref& r : copy.ins) r = mapped(r);
      out.push_back(std::move(copy));
      map[i] = {Ref::Kind::op, static_cast<uint32_t>(out.size() - 1)};
      continue;
    }
    // Build the program in tape order (members are topologically ordered already).
    for (uint32_t m : members[i]) mark[m] = i;
    auto inside = [&](Ref r) { return r.kind == Ref::Kind::op && mark[r.index] == i; };
    std::vector<Ref> inputs;
    std::vector<FusedElementwise::Instr> prog;
    std::vector<int> reg(t.ops.size(), -1);
    auto operand = [&](Ref r) {
      if (inside(r) && reg[r.index] >= 0) return reg[r.index];
      Ref m = mapped(r);
      auto it = std::find(inputs.begin(), inputs.end(), m);
      if (it != inputs.end()) return static_cast<int>(it - inputs.begin());
      inputs.push_back(m);
      return static_cast<int>(inputs.size() - 1);
    };
    // Operands first (so input registers are numbered before instruction registers).
    std::vector<std::array<int, 3>> args(members[i].size(), {-1, -1, -1});
    for (size_t k = 0; k < members[i].size(); ++k) {
      const TapeOp& m = t.ops[members[i][k]];
      for (size_t a = 0; a < m.ins.size(); ++a) {
        Ref r = m.ins[a];
        if (!inside(r)) args[k][a] = operand(r);
      }
    }
    int n_in = static_cast<int>(inputs.size());
    for (size_t k = 0; k < members[i].size(); ++k) {
      uint32_t mi = members[i][k];
      const TapeOp& m = t.ops[mi];
      FusedElementwise::Instr ins{};
      ins.dtype = m.dtype;
      int* slots[3] = {&ins.a, &ins.b, &ins.c};
      for (size_t a = 0; a < m.ins.size(); ++a) {
        Ref r = m.ins[a];
        *slots[a] = inside(r) ? reg[r.index] : args[k][a];
      }
      if (auto* u = dynamic_cast<Unary*>(m.prim.get())) {
        ins.kind = FusedElementwise::Kind::unary;
        ins.op = static_cast<uint8_t>(u->op);
      } else if (auto* b = dynamic_cast<Binary*>(m.prim.get())) {
        ins.kind = FusedElementwise::Kind::binary;
        ins.op = static_cast<uint8_t>(b->op);
      } else if (dynamic_cast<Where*>(m.prim.get())) {
        ins.kind = FusedElementwise::Kind::where;
      } else {
        ins.kind = FusedElementwise::Kind::cast;
      }
      reg[mi] = n_in + static_cast<int>(prog.size());
      prog.push_back(ins);
    }
    out.push_back({std::make_shared<FusedElementwise>(std::move(prog), cls[i] == RegClass::f64), inputs, op.shape, op.dtype});
    map[i] = {Ref::Kind::op, static_cast<uint32_t>(out.size() - 1)};
    ++s.fused_elementwise;
  }
  for (Ref& r : t.outputs) r = mapped(r);
  t.ops = std::move(out);
}

}  // namespace wick::detail
