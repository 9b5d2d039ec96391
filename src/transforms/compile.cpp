// compile: trace on placeholders -> tape -> passes -> replay, cached per input signature (LRU).
#include "wick/compile.h"

#include <list>
#include <map>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "graph/ops_common.h"
#include "runtime/stream.h"
#include "transforms/graph_plan.h"
#include "transforms/tape.h"
#include "wick/runtime.h"

namespace wick::detail {

Shape Tape::shape_of(Ref r) const {
  switch (r.kind) {
    case Ref::Kind::input: return input_shapes[r.index];
    case Ref::Kind::constant: return constants[r.index].shape();
    default: return ops[r.index].shape;
  }
}

DType Tape::dtype_of(Ref r) const {
  switch (r.kind) {
    case Ref::Kind::input: return input_dtypes[r.index];
    case Ref::Kind::constant: return constants[r.index].dtype();
    default: return ops[r.index].dtype;
  }
}

Tensor make_op(const TapeOp& op, std::vector<Tensor> ins) {
  if (ins.empty()) return make_node_on(op.device, op.shape, op.dtype, op.prim, {});
  return make_node(op.shape, op.dtype, op.prim, std::move(ins));
}

std::vector<uint32_t> Tape::use_counts() const {
  std::vector<uint32_t> uses(ops.size(), 0);
  for (const TapeOp& op : ops)
    for (const Ref& r : op.ins)
      if (r.kind == Ref::Kind::op) ++uses[r.index];
  for (const Ref& r : outputs)
    if (r.kind == Ref::Kind::op) ++uses[r.index];
  return uses;
}

namespace {

/// Input nodes the function is traced on: shape and dtype, no value and no primitive.
Tensor placeholder(const Tensor& like) {
  auto n = std::make_shared<Node>();
  n->shape = like.shape();
  n->dtype = like.dtype();
  n->device = like.device();
  return Tensor(std::move(n));
}

Tape trace(const Function& fn, const std::vector<Tensor>& inputs) {
  Tape t;
  std::vector<Tensor> ph;
  std::unordered_map<Node*, Ref> refs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw Error("compile: input " + std::to_string(i) + " is a null tensor");
    ph.push_back(placeholder(inputs[i]));
    t.input_shapes.push_back(inputs[i].shape());
    t.input_dtypes.push_back(inputs[i].dtype());
    refs[ph.back().node()] = {Ref::Kind::input, static_cast<uint32_t>(i)};
  }
  std::vector<Tensor> outs;
  {
    TraceScope tracing;
    RetainScope retain;
    outs = fn(ph);
  }
  // Post-order walk: ops are nodes built by fn (retained, pending, with a primitive); anything
  // else reached is a constant of the trace.
  std::vector<std::pair<Tensor, size_t>> stack;
  auto is_op = [](const Node* n) {
    return n->retained && n->primitive && n->state.load(std::memory_order_acquire) == NodeState::pending;
  };
  for (const Tensor& o : outs) {
    if (!o.defined()) throw Error("compile: the function returned a null tensor");
    if (refs.count(o.node())) continue;
    stack.emplace_back(o, 0);
    while (!stack.empty()) {
      auto& [tn, i] = stack.back();
      Node* n = tn.node();
      if (is_op(n) && i < n->inputs.size()) {
        const Tensor& in = n->inputs[i++];
        if (!refs.count(in.node())) stack.emplace_back(in, 0);
        continue;
      }
      if (!refs.count(n)) {
        if (is_op(n)) {
          TapeOp op{n->primitive, {}, n->shape, n->dtype, n->device};
          for (const Tensor& in : n->inputs) op.ins.push_back(refs.at(in.node()));
          refs[n] = {Ref::Kind::op, static_cast<uint32_t>(t.ops.size())};
          t.ops.push_back(std::move(op));
        } else {
          refs[n] = {Ref::Kind::constant, static_cast<uint32_t>(t.constants.size())};
          t.constants.push_back(tn);
        }
      }
      stack.pop_back();
    }
  }
  for (const Tensor& o : outs) t.outputs.push_back(refs.at(o.node()));
  // Lazy constants (built outside fn) are computed once, now.
  std::vector<Tensor> pending;
  for (const Tensor& c : t.constants)
    if (!c.is_evaluated()) pending.push_back(c);
  if (!pending.empty()) eval(pending);
  return t;
}

}  // namespace

std::vector<Tensor> replay(const Tape& t, const std::vector<Tensor>& inputs, const std::function<void(Node&)>& run) {
  std::vector<uint32_t> uses = t.use_counts();
  std::vector<Tensor> vals(t.ops.size());
  auto get = [&](Ref r) -> const Tensor& {
    switch (r.kind) {
      case Ref::Kind::input: return inputs[r.index];
      case Ref::Kind::constant: return t.constants[r.index];
      default: return vals[r.index];
    }
  };
  for (size_t i = 0; i < t.ops.size(); ++i) {
    const TapeOp& op = t.ops[i];
    std::vector<Tensor> ins;
    ins.reserve(op.ins.size());
    for (const Ref& r : op.ins) ins.push_back(get(r));
    Tensor n = make_op(op, std::move(ins));
    // Last uses are dropped before the op runs: evaluated at once, it may reuse their buffers
    // as a plain evaluation would (lazy nodes keep their inputs themselves).
    for (const Ref& r : op.ins)
      if (r.kind == Ref::Kind::op && --uses[r.index] == 0) vals[r.index] = Tensor();
    if (run) run(*n.node());
    vals[i] = std::move(n);
  }
  std::vector<Tensor> outs;
  for (const Ref& r : t.outputs) outs.push_back(get(r));
  return outs;
}

namespace {

std::string signature(const std::vector<Tensor>& inputs) {
  std::string key;
  for (const Tensor& x : inputs) {
    key += dtype_name(x.dtype());
    key += '@';
    key += x.device().str();
    for (int64_t d : x.shape()) key += ',' + std::to_string(d);
    key += ';';
  }
  return key;
}

}  // namespace
}  // namespace wick::detail

namespace wick {

namespace {

/// One signature's trace, and its CUDA graph once it has been called twice on a GPU.
struct Entry {
  std::shared_ptr<detail::Tape> tape;
  std::shared_ptr<detail::GraphPlan> graph;
  size_t calls = 0;
};

/// The CUDA device every input is on, if they all are on one.
std::optional<Device> graph_device(const std::vector<Tensor>& inputs) {
  if (inputs.empty() || inputs[0].device().type != Device::Type::cuda) return std::nullopt;
  for (const Tensor& x : inputs)
    if (x.device() != inputs[0].device()) return std::nullopt;
  return inputs[0].device();
}

}  // namespace

struct CompiledFunction::Impl {
  Function fn;
  CompileOptions opts;
  std::mutex mutex;
  std::list<std::pair<std::string, std::shared_ptr<Entry>>> lru;  // most recent first
  std::map<std::string, decltype(lru)::iterator> index;
  CompileStats stats;
  std::shared_ptr<detail::Tape> last;
  // The memory of this function's CUDA graphs, by device index: shared by its signatures.
  std::map<int, std::shared_ptr<detail::GraphPools>> graph_pools;

  std::shared_ptr<detail::Tape> build(const std::vector<Tensor>& inputs) {
    auto tape = std::make_shared<detail::Tape>(detail::trace(fn, inputs));
    detail::PassStats ps;
    CompileStats s = stats;
    s.nodes_traced = tape->ops.size();
    detail::eliminate_dead(*tape);
    detail::fold_constants(*tape, ps);
    detail::merge_common(*tape, ps);
    if (opts.fuse) {
      detail::fuse_patterns(*tape, ps);
      detail::fuse_linears(*tape, ps);
      detail::fuse_activations(*tape, ps);
      detail::fuse_elementwise(*tape, ps);
    }
    s.nodes_planned = tape->ops.size();
    s.kernels_planned = 0;
    for (const auto& op : tape->ops) s.kernels_planned += op.prim->is_view() ? 0 : 1;
    s.merged = ps.merged;
    s.folded = ps.folded;
    s.fused_elementwise = ps.fused_elementwise;
    s.fused_patterns = ps.fused_patterns;
    s.plan_peak_bytes = detail::plan_peak_bytes(*tape);
    s.traces++;
    stats = s;
    return tape;
  }
};

CompiledFunction::CompiledFunction(Function fn, CompileOptions opts) : impl_(std::make_shared<Impl>()) {
  if (!fn) throw Error("compile: empty function");
  if (opts.max_cache_entries == 0) throw Error("compile: max_cache_entries must be at least 1");
  impl_->fn = std::move(fn);
  impl_->opts = opts;
}

std::vector<Tensor> CompiledFunction::operator()(const std::vector<Tensor>& inputs) {
  Impl& m = *impl_;
  std::string key = detail::signature(inputs);
  std::shared_ptr<Entry> entry;
  std::shared_ptr<detail::GraphPlan> graph;
  {
    std::lock_guard lock(m.mutex);
    auto it = m.index.find(key);
    if (it != m.index.end()) {
      m.lru.splice(m.lru.begin(), m.lru, it->second);
      entry = it->second->second;
      m.stats.cache_hits++;
    } else {
      entry = std::make_shared<Entry>();
      entry->tape = m.build(inputs);
      m.lru.emplace_front(key, entry);
      m.index[key] = m.lru.begin();
      while (m.lru.size() > m.opts.max_cache_entries) {
        m.index.erase(m.lru.back().first);
        m.lru.pop_back();
      }
    }
    m.stats.cache_entries = m.lru.size();
    m.last = entry->tape;
    // The first call of a signature runs lazily: it warms what recording cannot do (kernel
    // compilation, GEMM heuristics), and a signature seen once never pays for a recording.
    // While profiling, kernels are timed one by one, which a graph would hide.
    if (++entry->calls >= 2 && m.opts.cuda_graphs && detail::cuda_graphs_enabled() &&
        !detail::profiling.load(std::memory_order_relaxed)) {
      if (auto dev = graph_device(inputs)) {
        if (!entry->graph) {
          auto& pool = m.graph_pools[dev->index];
          if (!pool) pool = std::make_shared<detail::GraphPools>(*dev);
          entry->graph = std::make_shared<detail::GraphPlan>(entry->tape, pool);
        }
        if (!entry->graph->failed()) graph = entry->graph;
      }
    }
  }
  // Outputs of a graph hold its buffers until they have run, even if the entry is evicted.
  return graph ? graph->call(inputs) : detail::replay(*entry->tape, inputs);
}

CompileStats CompiledFunction::stats() const {
  std::lock_guard lock(impl_->mutex);
  CompileStats s = impl_->stats;
  for (const auto& [key, e] : impl_->lru) {
    if (!e->graph) continue;
    detail::GraphPlanStats g = e->graph->stats();
    s.graph_captures += g.captures;
    s.graph_replays += g.replays;
    s.graph_failures += g.failures;
    if (!g.failure.empty()) s.graph_failure = g.failure;
  }
  for (const auto& [index, pool] : impl_->graph_pools) s.graph_bytes += pool->bytes();
  return s;
}

std::string CompiledFunction::describe() const {
  std::shared_ptr<detail::Tape> t;
  {
    std::lock_guard lock(impl_->mutex);
    t = impl_->last;
  }
  if (!t) return "(not traced yet)\n";
  std::ostringstream os;
  auto name = [](detail::Ref r) {
    const char* k = r.kind == detail::Ref::Kind::input ? "in" : r.kind == detail::Ref::Kind::constant ? "c" : "%";
    return std::string(k) + std::to_string(r.index);
  };
  for (size_t i = 0; i < t->ops.size(); ++i) {
    const auto& op = t->ops[i];
    os << "%" << i << " = ";
    op.prim->print(os);
    os << "(";
    for (size_t k = 0; k < op.ins.size(); ++k) os << (k ? ", " : "") << name(op.ins[k]);
    os << ") " << shape_str(op.shape) << " " << dtype_name(op.dtype) << "\n";
  }
  os << "return";
  for (const auto& r : t->outputs) os << " " << name(r);
  os << "\n";
  return os.str();
}

CompiledFunction compile(Function fn, CompileOptions opts) { return CompiledFunction(std::move(fn), opts); }

}  // namespace wick
