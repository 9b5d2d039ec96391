#pragma once
// A compiled function's trace replayed as one CUDA graph: recorded once with fixed buffers,
// then queued whole on each call (see docs/cuda.md, "CUDA graphs").
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/lane.h"
#include "transforms/tape.h"

namespace wick::detail {

/// Whether compiled functions may use CUDA graphs: set_cuda_graphs(), else the environment
/// variable WICK_CUDA_GRAPHS (0 or off disables), else on.
bool cuda_graphs_enabled();

/// Runs the tape's ops on evaluated `inputs` at once on this thread (device work is queued, not
/// waited for), dropping each intermediate after its last use; returns the evaluated outputs.
/// `recording`: the launches are being recorded into a graph, and host ops are refused.
std::vector<Tensor> run_tape(const Tape& t, const std::vector<Tensor>& inputs, bool recording);

struct GraphPlanStats {
  size_t captures = 0, replays = 0, failures = 0;
  std::string failure;    // why recording failed, when it did
};

/// The memory of one compiled function's CUDA graphs on one device: a private pool per lane
/// (core/lane.h), shared by the graphs of all its signatures there.
class GraphPools {
 public:
  explicit GraphPools(Device d) : device_(d) {}
  Device device() const { return device_; }
  std::shared_ptr<PrivatePool> for_lane(int lane);
  /// Device memory the pools hold.
  size_t bytes() const;

 private:
  Device device_;
  mutable std::mutex mutex_;
  std::array<std::shared_ptr<PrivatePool>, kLanes> pools_;
};

/// The CUDA graphs of one trace on one device, one per lane that calls it. A lane's first call
/// records its graph: the trace runs on the recording's own input buffers with allocations
/// from the lane's pool, so every address is fixed, and the graph holds that lane's cuBLASLt
/// workspace and error flag. The graphs of one compiled function on a lane share a pool: they
/// replay one after another on the lane's stream, and each copies its outputs out, so one
/// graph's intermediates are free for the next (a training run whose batches come in several
/// widths keeps one working set, not one per width); two lanes have their own, so they replay
/// at the same time. Each call then copies its inputs into those buffers, launches the graph
/// and copies the outputs into fresh tensors, so callers never see the plan's buffers. If
/// recording fails (an op that cannot be captured, such as a copy from host memory), the plan
/// says so and the compiled function goes back to plain launches.
class GraphPlan {
 public:
  GraphPlan(std::shared_ptr<const Tape> tape, std::shared_ptr<GraphPools> pools);
  /// The outputs for `inputs` (all on the plan's device) as lazy tensors; evaluating any of them
  /// runs the graph once for all.
  std::vector<Tensor> call(const std::vector<Tensor>& inputs);
  bool failed() const;
  GraphPlanStats stats() const;

  struct State;

 private:
  std::shared_ptr<State> s_;
};

}  // namespace wick::detail
