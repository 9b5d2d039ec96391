#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/cuda_api.h"
#include "graph/node.h"
#include "wick/device.h"

namespace wick::detail {

/// Completion of one submission; shared by every Future copy.
struct FutureState {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  std::mutex mutex;
  std::condition_variable cv;

  void finish(std::exception_ptr e);
  void wait();
};

/// One evaluation: the pending nodes in topological order (raw pointers: each is kept alive by
/// its consumer or by `roots` until it has run) and the roots the caller asked for.
struct Submission {
  std::vector<Node*> order;
  std::vector<Tensor> roots;
  std::shared_ptr<FutureState> future;
  std::vector<cuda_api::Marker> markers;  // the end of its work on each CUDA device it used
  std::exception_ptr error;               // the first failure
};

/// The worker of one stream: runs submissions in order on its own thread.
class StreamWorker {
 public:
  explicit StreamWorker(Stream s);
  ~StreamWorker();
  void submit(Submission s);
  /// Blocks until every submission queued before this call has finished.
  void drain();

 private:
  void loop();

  Stream stream_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Submission> queue_;
  std::atomic<int> queued_{0};
  uint64_t submitted_ = 0;  // guarded by mutex_
  uint64_t completed_ = 0;  // guarded by mutex_
  std::condition_variable done_cv_;
  bool stop_ = false;
  std::thread thread_;
};

StreamWorker& worker_for(Stream s);
/// set_profiling's switch: while on, kernels are timed one by one (and graphs are not used).
extern std::atomic<bool> profiling;
/// Executes a submission's nodes in order on the calling thread (CUDA kernels are queued) and
/// marks the end of its work on each device.
void launch_submission(Submission& s);
/// Whether the devices have finished a launched submission's work.
bool devices_done(const Submission& s);
/// Waits for the devices, then completes the submission's future.
void complete_submission(Submission& s);

}  // namespace wick::detail
