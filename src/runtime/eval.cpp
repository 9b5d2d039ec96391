#include <mutex>
#include <unordered_set>

#include "graph/primitive.h"
#include "runtime/stream.h"
#include "wick/runtime.h"

namespace wick {
namespace {

// Serialises graph walks: a pending node is claimed (marked scheduled) by exactly one
// submission, and later walks stop at claimed nodes instead of reading their inputs, which the
// worker may be detaching.
std::mutex& schedule_mutex() {
  static std::mutex m;
  return m;
}

thread_local int eager_depth = 0;

[[noreturn]] void throw_placeholder() {
  // Only compile's placeholders are pending without a primitive.
  throw Error("eval: the value depends on an input of a function being compiled; a compiled "
              "function must not evaluate or read tensors while it is traced");
}

/// Reorders a topological order so that a value's consumers run as soon as they can (Kahn's
/// algorithm with a LIFO ready stack, ties broken by the DFS order). A plain DFS from several
/// roots finishes one root before starting the next, so values shared with a later root (the
/// activations a layer's weight gradient needs) stay alive to the end; running consumers
/// eagerly frees them layer by layer, which is what makes gradient checkpointing save memory.
std::vector<detail::Node*> memory_order(const std::vector<detail::Node*>& dfs) {
  using detail::Node;
  const uint32_t n = static_cast<uint32_t>(dfs.size());
  for (uint32_t i = 0; i < n; ++i) dfs[i]->sched_index = i;
  auto in_batch = [&](const Node* c) { return c->sched_index < n && dfs[c->sched_index] == c; };
  // Consumers in compressed rows: first[i]..first[i+1] index `users`.
  std::vector<uint32_t> pending(n, 0), first(n + 1, 0), users;
  for (uint32_t i = 0; i < n; ++i)
    for (const Tensor& t : dfs[i]->inputs)
      if (in_batch(t.node())) {
        ++pending[i];
        ++first[t.node()->sched_index + 1];
      }
  for (uint32_t i = 0; i < n; ++i) first[i + 1] += first[i];
  users.resize(first[n]);
  std::vector<uint32_t> fill(first.begin(), first.end() - 1);
  for (uint32_t i = 0; i < n; ++i)
    for (const Tensor& t : dfs[i]->inputs)
      if (in_batch(t.node())) users[fill[t.node()->sched_index]++] = i;
  std::vector<uint32_t> ready;
  for (uint32_t i = n; i-- > 0;)
    if (pending[i] == 0) ready.push_back(i);
  std::vector<Node*> out;
  out.reserve(n);
  while (!ready.empty()) {
    uint32_t i = ready.back();
    ready.pop_back();
    out.push_back(dfs[i]);
    for (uint32_t k = first[i + 1]; k-- > first[i];)
      if (--pending[users[k]] == 0) ready.push_back(users[k]);
  }
  return out;
}

/// Claims every pending node the roots depend on and returns them in topological order. The
/// walk uses an explicit stack so graph depth is bounded only by memory. The caller holds
/// schedule_mutex() until the submission is queued: a submission that depends on nodes claimed
/// by another must never reach a stream's queue ahead of it.
std::vector<detail::Node*> schedule(const std::vector<Tensor>& roots) {
  using detail::Node;
  using detail::NodeState;
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  for (const Tensor& r : roots) {
    if (!r.defined()) throw Error("eval: null tensor");
    Node* root = r.node();
    if (root->state.load(std::memory_order_acquire) != NodeState::pending) continue;
    if (!seen.insert(root).second) continue;
    if (!root->primitive) throw_placeholder();
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      Node* n = stack.back().first;
      size_t i = stack.back().second;
      if (i < n->inputs.size()) {
        stack.back().second++;
        Node* c = n->inputs[i].node();
        if (c->state.load(std::memory_order_acquire) == NodeState::pending && seen.insert(c).second) {
          if (!c->primitive) throw_placeholder();
          stack.emplace_back(c, 0);
        }
      } else {
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  for (Node* n : order) n->state.store(NodeState::scheduled, std::memory_order_release);
  return memory_order(order);
}

/// The first error among already-finished roots (failed in an earlier evaluation).
std::exception_ptr earlier_error(const std::vector<Tensor>& roots) {
  for (const Tensor& r : roots) {
    if (r.node()->state.load(std::memory_order_acquire) == detail::NodeState::failed) {
      return r.node()->error;
    }
  }
  return nullptr;
}

}  // namespace

Future eval_async(const std::vector<Tensor>& tensors, Stream stream) {
  auto state = std::make_shared<detail::FutureState>();
  detail::StreamWorker& worker = detail::worker_for(stream);
  detail::Submission s;
  s.roots = tensors;
  s.future = state;
  std::lock_guard lock(schedule_mutex());
  s.order = schedule(tensors);
  if (s.order.empty()) {
    state->finish(nullptr);
  } else {
    worker.submit(std::move(s));
  }
  return Future(state, tensors);
}

void eval(const std::vector<Tensor>& tensors) {
  Future f = eval_async(tensors);
  f.get();
}

void Future::wait() const {
  if (state_) state_->wait();
  // Roots claimed by an earlier submission (perhaps on another stream) finish there.
  for (const Tensor& r : tensors_) {
    auto st = r.node()->state.load(std::memory_order_acquire);
    while (st == detail::NodeState::scheduled) {
      r.node()->state.wait(st, std::memory_order_acquire);
      st = r.node()->state.load(std::memory_order_acquire);
    }
  }
}

bool Future::ready() const {
  if (state_ && !state_->done.load(std::memory_order_acquire)) return false;
  for (const Tensor& r : tensors_)
    if (r.node()->state.load(std::memory_order_acquire) == detail::NodeState::scheduled) return false;
  return true;
}

const std::vector<Tensor>& Future::get() const {
  wait();
  if (state_ && state_->error) std::rethrow_exception(state_->error);
  // A root claimed by another submission that failed there carries that error.
  if (auto e = earlier_error(tensors_)) std::rethrow_exception(e);
  return tensors_;
}

EagerScope::EagerScope() { ++eager_depth; }
EagerScope::~EagerScope() { --eager_depth; }
bool eager_mode() { return eager_depth > 0; }

}  // namespace wick
