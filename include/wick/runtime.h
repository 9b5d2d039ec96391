#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wick/tensor.h"

namespace wick {

namespace detail {
struct FutureState;
}

/// The pending result of eval_async. Copyable; all copies see the same completion.
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureState> s, std::vector<Tensor> t)
      : state_(std::move(s)), tensors_(std::move(t)) {}
  /// Blocks until the evaluation finished (successfully or not); never throws.
  void wait() const;
  /// True once the evaluation finished.
  bool ready() const;
  /// Waits, then returns the evaluated tensors, or rethrows the evaluation's error as wick::Error.
  const std::vector<Tensor>& get() const;

 private:
  std::shared_ptr<detail::FutureState> state_;
  std::vector<Tensor> tensors_;
};

/// Evaluates everything the tensors depend on, as one submission, and returns when their data
/// is ready. Errors inside the evaluation are thrown here as wick::Error.
void eval(const std::vector<Tensor>& tensors);
/// Submits the same work to the stream and returns at once.
Future eval_async(const std::vector<Tensor>& tensors, Stream stream = default_stream());

/// While alive on a thread, every op built on that thread is evaluated at once (the honest
/// baseline for the lazy path, and a debugging aid). Scopes nest.
class EagerScope {
 public:
  EagerScope();
  ~EagerScope();
  EagerScope(const EagerScope&) = delete;
  EagerScope& operator=(const EagerScope&) = delete;
};
bool eager_mode();

/// Turns CUDA-graph replay of compiled functions on or off for the process (default: on, unless
/// the environment variable WICK_CUDA_GRAPHS is 0 or off). Graphs already recorded stay cached
/// but are not used while off.
void set_cuda_graphs(bool on);

/// Debug counter: kernels run so far by this process (every evaluated primitive except pure
/// views such as reshape, transpose, slice and broadcast). Tests use differences of it to prove
/// that fusion happened.
uint64_t kernel_count();

/// Kernel-time profiling (off by default; a few hundred nanoseconds per kernel when on). While
/// on, each evaluated primitive's wall time is added up under its name (GEMMs also under their
/// operand shapes, the usual suspects).
void set_profiling(bool on);
struct ProfileEntry {
  std::string name;
  uint64_t calls = 0;
  double total_us = 0;
};
/// The entries so far, slowest first; `reset` clears them.
std::vector<ProfileEntry> profile_report(bool reset = true);

}  // namespace wick
