#include "transforms/graph_plan.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "backend/output.h"
#include "core/cuda_api.h"
#include "wick/runtime.h"

namespace wick {

namespace {
// -1: not decided yet (read the environment), 0 off, 1 on.
std::atomic<int> graphs_setting{-1};
}  // namespace

void set_cuda_graphs(bool on) { graphs_setting.store(on ? 1 : 0); }

}  // namespace wick

namespace wick::detail {

bool cuda_graphs_enabled() {
  int s = graphs_setting.load();
  if (s < 0) {
    const char* e = std::getenv("WICK_CUDA_GRAPHS");
    s = e && (std::strcmp(e, "0") == 0 || std::strcmp(e, "off") == 0) ? 0 : 1;
    int expected = -1;
    graphs_setting.compare_exchange_strong(expected, s);
    s = graphs_setting.load();
  }
  return s == 1;
}

namespace {

/// Evaluates a node whose inputs are evaluated or are pending operands that make_node moved to
/// its device (a host scalar): those run first. While recording, a host op is refused: its work
/// would happen now, on data the graph has not computed yet.
void run_node(Node& n, bool recording) {
  for (const Tensor& t : n.inputs)
    if (t.node()->state.load(std::memory_order_acquire) != NodeState::ready) run_node(*t.node(), recording);
  if (recording && n.device.type != Device::Type::cuda)
    throw Error(std::string("cuda graph: ") + n.primitive->name() + " runs on the host, which a graph cannot record");
  std::vector<Node*> ins;
  ins.reserve(n.inputs.size());
  for (const Tensor& t : n.inputs) ins.push_back(t.node());
  if (n.device.type == Device::Type::cuda) {
    n.primitive->eval_cuda(ins, n);
    cuda_api::wrote(n, ins);
  } else {
    n.primitive->eval_cpu(ins, n);
  }
  n.state.store(NodeState::ready, std::memory_order_release);
  n.inputs.clear();
  n.primitive.reset();
}

/// An evaluated dense tensor over a fresh buffer (from the pool while one is in scope).
Tensor dense_tensor(const Shape& shape, DType dtype, Device device) {
  auto n = std::make_shared<Node>();
  n->shape = shape;
  n->dtype = dtype;
  n->device = device;
  n->storage = allocate(std::max<size_t>(numel(shape) * itemsize(dtype), 1), device);
  n->strides = contiguous_strides(shape);
  n->state.store(NodeState::ready);
  return Tensor(std::move(n));
}

}  // namespace

std::vector<Tensor> run_tape(const Tape& t, const std::vector<Tensor>& inputs, bool recording) {
  return replay(t, inputs, [recording](Node& n) { run_node(n, recording); });
}

struct GraphPlan::State {
  /// One lane's graph and the buffers it was recorded over.
  struct Recording {
    std::shared_ptr<PrivatePool> pool;
    std::vector<Tensor> slots;    // the graph's input buffers
    std::vector<Tensor> results;  // the graph's outputs (op outputs of the tape; views allowed)
    std::shared_ptr<cuda_api::Graph> graph;
  };
  std::shared_ptr<const Tape> tape;
  Device device;
  std::mutex mutex;  // one call at a time queues work on the recordings' buffers
  std::shared_ptr<GraphPools> pools;
  std::array<std::unique_ptr<Recording>, kLanes> lanes;
  GraphPlanStats stats;
  bool failed = false;

  /// Records the tape into r; on failure marks the plan failed.
  void capture(Recording& r) {
    std::exception_ptr error;
    {
      PoolScope scope(r.pool);
      for (size_t i = 0; i < tape->input_shapes.size(); ++i)
        r.slots.push_back(dense_tensor(tape->input_shapes[i], tape->input_dtypes[i], device));
      bool recording = false;
      try {
        cuda_api::begin_capture(device.index);
        recording = true;
        r.results = run_tape(*tape, r.slots, true);
      } catch (...) {
        error = std::current_exception();
      }
      if (recording) {
        try {
          r.graph = cuda_api::end_capture(device.index, !error);
        } catch (...) {
          error = std::current_exception();
        }
      }
    }
    if (error) {
      failed = true;
      stats.failures++;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        stats.failure = e.what();
      }
      return;
    }
    stats.captures++;
  }

  /// One call's outputs (one per tape output that is an op), evaluated, on this thread's lane.
  std::vector<Tensor> execute(const std::vector<Tensor>& inputs) {
    std::lock_guard lock(mutex);
    std::unique_ptr<Recording>& r = lanes[static_cast<size_t>(this_lane)];
    if (!r && !failed) {
      r = std::make_unique<Recording>();
      r->pool = pools->for_lane(this_lane);
      capture(*r);
      if (failed) r.reset();
    }
    // The graph (or the plain replay) reads the trace's constants (a model's weights) where they
    // lie: wait for another lane still writing them (the inputs were waited for as the launch's
    // inputs).
    for (const Tensor& c : tape->constants) cuda_api::order_reads(*c.node());
    if (failed) return op_outputs(run_tape(*tape, inputs, false));
    // Inputs in and outputs out, batched: a training step's graph has a thousand of each.
    std::vector<std::pair<const Node*, void*>> copies;
    for (size_t i = 0; i < inputs.size(); ++i)
      copies.emplace_back(inputs[i].node(), r->slots[i].node()->raw());
    cuda_api::copy_dense_many(copies);
    cuda_api::launch(*r->graph);
    stats.replays++;
    std::vector<Tensor> outs;
    copies.clear();
    for (const Tensor& res : op_outputs(r->results)) {
      Tensor o = dense_tensor(res.shape(), res.dtype(), device);
      copies.emplace_back(res.node(), o.node()->raw());
      outs.push_back(o);
    }
    cuda_api::copy_dense_many(copies);
    // Another lane that reads an output waits for the copy (cuda_api::order_reads).
    for (const Tensor& o : outs) cuda_api::wrote(*o.node(), {});
    return outs;
  }

  std::vector<Tensor> op_outputs(const std::vector<Tensor>& all) const {
    std::vector<Tensor> out;
    for (size_t k = 0; k < tape->outputs.size(); ++k)
      if (tape->outputs[k].kind == Ref::Kind::op) out.push_back(all[k]);
    return out;
  }
};

namespace {

/// One call of a plan: its inputs, and the outputs once the first output node has run it.
struct Launch {
  std::shared_ptr<GraphPlan::State> plan;
  std::vector<Tensor> inputs;
  std::mutex mutex;
  bool done = false;
  std::exception_ptr error;
  std::vector<Tensor> outputs;

  const Tensor& output(size_t k) {
    std::lock_guard lock(mutex);
    if (!done) {
      done = true;
      try {
        outputs = plan->execute(inputs);
      } catch (...) {
        error = std::current_exception();
      }
      inputs.clear();
    }
    if (error) std::rethrow_exception(error);
    return outputs[k];
  }
};

/// Output k of a launch: a view of the tensor the launch produced.
class GraphOutput : public Primitive {
 public:
  GraphOutput(std::shared_ptr<Launch> l, size_t k) : launch_(std::move(l)), k_(k) {}
  const char* name() const override { return "cuda_graph"; }
  void eval_cpu(std::span<Node* const>, Node&) override {
    throw Error("cuda_graph: a CUDA graph's output cannot be computed on the host");
  }
  void eval_cuda(std::span<Node* const>, Node& out) override {
    const Tensor& r = launch_->output(k_);
    make_view(out, *r.node(), r.node()->strides, r.node()->offset);
  }

 private:
  std::shared_ptr<Launch> launch_;
  size_t k_;
};

}  // namespace

std::shared_ptr<PrivatePool> GraphPools::for_lane(int lane) {
  std::lock_guard lock(mutex_);
  auto& p = pools_[static_cast<size_t>(lane)];
  if (!p) p = std::make_shared<PrivatePool>(device_, lane);
  return p;
}

size_t GraphPools::bytes() const {
  std::lock_guard lock(mutex_);
  size_t total = 0;
  for (const auto& p : pools_)
    if (p) total += p->bytes();
  return total;
}

GraphPlan::GraphPlan(std::shared_ptr<const Tape> tape, std::shared_ptr<GraphPools> pools)
    : s_(std::make_shared<State>()) {
  s_->tape = std::move(tape);
  s_->device = pools->device();
  s_->pools = std::move(pools);
}

bool GraphPlan::failed() const {
  std::lock_guard lock(s_->mutex);
  return s_->failed;
}

GraphPlanStats GraphPlan::stats() const {
  std::lock_guard lock(s_->mutex);
  return s_->stats;
}

std::vector<Tensor> GraphPlan::call(const std::vector<Tensor>& inputs) {
  const Tape& t = *s_->tape;
  auto launch = std::make_shared<Launch>();
  launch->plan = s_;
  launch->inputs = inputs;
  std::vector<Tensor> outs;
  // The first output depends on the inputs and runs the launch; the others depend on it alone.
  // Giving each of a training step's ~1,000 outputs all ~1,000 inputs made the scheduler walk a
  // million edges a step.
  Tensor first;
  size_t k = 0;
  for (const Ref& r : t.outputs) {
    switch (r.kind) {
      case Ref::Kind::input: outs.push_back(inputs[r.index]); break;
      case Ref::Kind::constant: outs.push_back(t.constants[r.index]); break;
      default:
        outs.push_back(make_node_on(s_->device, t.ops[r.index].shape, t.ops[r.index].dtype,
                                    std::make_shared<GraphOutput>(launch, k++),
                                    first.defined() ? std::vector<Tensor>{first} : inputs));
        if (!first.defined()) first = outs.back();
    }
  }
  return outs;
}

}  // namespace wick::detail
