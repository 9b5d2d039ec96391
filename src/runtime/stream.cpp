#include "runtime/stream.h"
#include "wick/runtime.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <sstream>
#include <map>

#include "core/cuda_api.h"
#include "core/lane.h"
#include "graph/primitives.h"
#include "wick/error.h"

namespace wick::detail {
namespace {

// Short waits are common (a small graph finishes in microseconds) and a futex wake-up costs tens
// of microseconds on a VM, so both sides poll before sleeping. They poll with sched_yield, not a
// pause loop: on a 2-core machine a pure spinner takes the core that the kernel's second OpenMP
// thread, or the host thread building the next graph, needs (measured: a pause-spinning idle
// worker tripled the run time of a GEMM step while the host was building the next one).
constexpr auto kWorkerSpin = std::chrono::microseconds(300);
constexpr auto kWaiterSpin = std::chrono::microseconds(50);
// A worker waiting on the device sleeps this long between polls after spinning.
constexpr auto kRunningPoll = std::chrono::microseconds(20);
// Submissions a worker keeps queued on its devices at once (the next one is launched while the
// previous computes; more would only hold more memory).
constexpr size_t kRunningSubmissions = 2;

template <class Pred>
bool spin_until(std::chrono::microseconds spin, Pred&& ready) {
  auto until = std::chrono::steady_clock::now() + spin;
  for (;;) {
    if (ready()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > until) return ready();
  }
}

std::exception_ptr as_wick_error(const Node& n, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error&) {
    return e;
  } catch (const std::exception& ex) {
    return std::make_exception_ptr(Error(std::string(n.primitive->name()) + ": " + ex.what()));
  } catch (...) {
    return std::make_exception_ptr(Error(std::string(n.primitive->name()) + ": unknown failure"));
  }
}

}  // namespace

void FutureState::finish(std::exception_ptr e) {
  {
    std::lock_guard lock(mutex);
    error = std::move(e);
    done.store(true, std::memory_order_release);
  }
  cv.notify_all();
}

void FutureState::wait() {
  if (spin_until(kWaiterSpin, [&] { return done.load(std::memory_order_acquire); })) return;
  std::unique_lock lock(mutex);
  cv.wait(lock, [&] { return done.load(std::memory_order_acquire); });
}

std::atomic<uint64_t> kernels_run{0};
std::atomic<bool> profiling{false};

struct Profile {
  std::mutex mutex;
  std::map<std::string, ProfileEntry> entries;
};
Profile& profile() {
  static Profile* p = new Profile();  // leaked: workers may record during exit
  return *p;
}

void record_profile(const Node& n, std::span<Node* const> ins, double us) {
  std::string key = n.primitive->name();
  if (dynamic_cast<const FusedElementwise*>(n.primitive.get())) {
    std::ostringstream os;
    n.primitive->print(os);
    key = os.str();
  }
  if (dynamic_cast<const Matmul*>(n.primitive.get()) || dynamic_cast<const LoraLinear*>(n.primitive.get())) {
    for (size_t i = 0; i < ins.size(); ++i) key += (i ? " x " : " ") + shape_str(ins[i]->shape);
  }
  Profile& p = profile();
  std::lock_guard lock(p.mutex);
  ProfileEntry& e = p.entries[key];
  e.name = key;
  e.calls++;
  e.total_us += us;
}

void launch_submission(Submission& s) {
  std::exception_ptr& first_error = s.error;
  // CUDA nodes are marked ready once launched: every later user of a device's values is a
  // kernel on the same in-order stream, a kernel on another lane that waits for it
  // (order_reads), or a copy to the host that waits for it. The submission completes only
  // after its devices have finished (complete_submission), so a waiter sees finished data and
  // any error a kernel reported.
  uint32_t cuda_devices = 0;
  std::vector<Node*> ins;
  for (Node* n : s.order) {
    ins.clear();
    std::exception_ptr input_error;
    for (const Tensor& t : n->inputs) {
      Node* in = t.node();
      // Nodes scheduled by an earlier submission (maybe on another stream) may still be running.
      NodeState st = in->state.load(std::memory_order_acquire);
      while (st == NodeState::scheduled) {
        in->state.wait(st, std::memory_order_acquire);
        st = in->state.load(std::memory_order_acquire);
      }
      if (st == NodeState::failed && !input_error) input_error = in->error;
      ins.push_back(in);
    }
    if (!input_error) {
      try {
        // A value another lane computes (a CUDA stream of another wick stream) is waited for.
        for (Node* in : ins) cuda_api::order_reads(*in);
      } catch (...) {
        input_error = as_wick_error(*n, std::current_exception());
      }
    }
    if (!input_error) {
      try {
        bool cuda = n->device.type == Device::Type::cuda;
        if (cuda) cuda_devices |= 1u << n->device.index;
        auto run = [&] {
          if (!cuda) return n->primitive->eval_cpu(ins, *n);
          n->primitive->eval_cuda(ins, *n);
          cuda_api::wrote(*n, ins);
        };
        if (profiling.load(std::memory_order_relaxed)) {
          // A CUDA kernel is timed to its completion, not to its launch.
          auto t0 = std::chrono::steady_clock::now();
          run();
          if (cuda) cuda_api::synchronize(n->device.index);
          auto dt = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
          record_profile(*n, ins, dt);
        } else {
          run();
        }
        if (!n->primitive->is_view()) kernels_run.fetch_add(1, std::memory_order_relaxed);
      } catch (...) {
        input_error = as_wick_error(*n, std::current_exception());
      }
    }
    if (input_error) {
      n->error = input_error;
      n->storage.reset();
      n->state.store(NodeState::failed, std::memory_order_release);
      if (!first_error) first_error = input_error;
    } else {
      n->state.store(NodeState::ready, std::memory_order_release);
    }
    n->state.notify_all();
    // Detach: the value (or error) no longer needs the graph behind it. Dropping inputs here,
    // not at the end, frees intermediates as soon as their last consumer has run. Retained
    // nodes keep theirs for a pending backward pass or trace.
    if (!n->retained) {
      n->inputs.clear();
      n->primitive.reset();
    }
  }
  for (int d = 0; cuda_devices >> d; ++d) {
    if (!((cuda_devices >> d) & 1u)) continue;
    try {
      s.markers.push_back(cuda_api::mark(d));
    } catch (...) {
      if (!first_error) first_error = std::current_exception();
    }
  }
}

bool devices_done(const Submission& s) {
  return std::all_of(s.markers.begin(), s.markers.end(), [](const cuda_api::Marker& m) { return cuda_api::reached(m); });
}

void complete_submission(Submission& s) {
  for (const cuda_api::Marker& m : s.markers) {
    try {
      cuda_api::finish(m);
    } catch (...) {
      if (!s.error) s.error = std::current_exception();
    }
  }
  s.markers.clear();
  if (!s.error)
    for (const Tensor& r : s.roots) r.node()->settled.store(true, std::memory_order_release);
  // The caller's Future holds the roots; dropping ours before signalling completion means that
  // once a waiter returns and drops its handles, the memory is really free.
  s.roots.clear();
  s.order.clear();
  s.future->finish(s.error);
}

}  // namespace wick::detail

namespace wick {
uint64_t kernel_count() { return detail::kernels_run.load(std::memory_order_relaxed); }

void set_profiling(bool on) { detail::profiling.store(on, std::memory_order_relaxed); }

std::vector<ProfileEntry> profile_report(bool reset) {
  detail::Profile& p = detail::profile();
  std::lock_guard lock(p.mutex);
  std::vector<ProfileEntry> out;
  for (auto& [k, e] : p.entries) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const ProfileEntry& a, const ProfileEntry& b) { return a.total_us > b.total_us; });
  if (reset) p.entries.clear();
  return out;
}
}  // namespace wick

namespace wick::detail {

StreamWorker::StreamWorker(Stream s)
    : stream_(s), thread_([this] {
        this_lane = lane_of_stream(stream_.id);
        loop();
      }) {}

StreamWorker::~StreamWorker() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StreamWorker::submit(Submission s) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(s));
    ++submitted_;
    queued_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_one();
}

void StreamWorker::loop() {
  // Submissions whose kernels are queued on a device and not yet known to have finished. The
  // next submission is launched behind them instead of after a wait, so the device goes from
  // one evaluation to the next without waiting for the host (a decoding step submitted while
  // the previous one computes starts the moment it ends).
  std::deque<Submission> running;
  auto complete = [&](Submission& s) {
    complete_submission(s);
    {
      std::lock_guard lock(mutex_);
      ++completed_;
    }
    done_cv_.notify_all();
  };
  auto complete_oldest = [&] {
    complete(running.front());
    running.pop_front();
  };
  auto can_launch = [&] {
    return running.size() < kRunningSubmissions && queued_.load(std::memory_order_acquire) > 0;
  };
  for (;;) {
    // Finished work is reported first: its waiter may be what submits the next evaluation.
    while (!running.empty() && devices_done(running.front())) complete_oldest();
    if (!running.empty()) {
      // Launch more while few are in flight; otherwise complete the oldest once it has finished.
      auto ready = [&] { return can_launch() || devices_done(running.front()); };
      if (!spin_until(kWorkerSpin, ready))
        while (!ready()) std::this_thread::sleep_for(kRunningPoll);
      if (!can_launch()) continue;
    } else {
      spin_until(kWorkerSpin, [&] { return queued_.load(std::memory_order_acquire) > 0; });
    }
    Submission s;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left (nothing is running)
      s = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_release);
    }
    launch_submission(s);
    // Host work is done once launched, so it completes at once, not behind the device's work
    // (a decoding step's token is read while the next step computes).
    if (s.markers.empty()) complete(s);
    else running.push_back(std::move(s));
  }
}

void StreamWorker::drain() {
  std::unique_lock lock(mutex_);
  uint64_t target = submitted_;
  done_cv_.wait(lock, [&] { return completed_ >= target; });
}

namespace {
struct Registry {
  std::mutex mutex;
  int next_id = 1;
  std::map<int, std::unique_ptr<StreamWorker>> workers;
};
Registry& registry() {
  // Leaked on purpose: worker threads must outlive every static that might still evaluate.
  static Registry* r = new Registry();
  return *r;
}

/// At exit, lets in-flight evaluations finish before static destructors (ours, oneDNN's, the
/// OpenMP runtime's) pull their state from under a running kernel.
void drain_at_exit() {
  Registry& r = registry();
  std::vector<StreamWorker*> workers;
  {
    std::lock_guard lock(r.mutex);
    for (auto& [id, w] : r.workers) workers.push_back(w.get());
  }
  for (StreamWorker* w : workers) w->drain();
}
}  // namespace

StreamWorker& worker_for(Stream s) {
  if (s.device.type == Device::Type::cuda && s.device.index >= cuda_api::device_count()) {
    throw Error("eval_async: device " + s.device.str() + " is not available");
  }
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  static bool prepared = [] {
    prepare_cpu_backend();
    std::atexit(drain_at_exit);  // registered after the backend's statics: runs before them
    return true;
  }();
  (void)prepared;
  auto it = r.workers.find(s.id);
  if (it == r.workers.end()) {
    if (s.id != 0 && s.id >= r.next_id) throw Error("eval_async: unknown stream " + std::to_string(s.id));
    it = r.workers.emplace(s.id, std::make_unique<StreamWorker>(s)).first;
  }
  return *it->second;
}

}  // namespace wick::detail

namespace wick {

std::string Device::str() const {
  return (type == Type::cpu ? "cpu:" : "cuda:") + std::to_string(index);
}

Stream default_stream(Device d) { return Stream{0, d}; }

int cuda_device_count() {
  static int n = detail::cuda_api::device_count();
  return n;
}

Stream new_stream(Device d) {
  auto& r = detail::registry();
  std::lock_guard lock(r.mutex);
  return Stream{r.next_id++, d};
}

}  // namespace wick
