#pragma once
// compile: trace a function once per input signature, optimise the traced graph, replay it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wick/transforms.h"

namespace wick {

struct CompileOptions {
  /// Elementwise-chain and pattern fusion (off: only dead-node elimination, merging and folding).
  bool fuse = true;
  /// Traces kept (one per input signature); the least recently used is dropped beyond this.
  size_t max_cache_entries = 16;
  /// On a CUDA device, replay each signature as one CUDA graph from its second call on (see
  /// docs/cuda.md). The function's graphs keep their memory between calls, in one pool that
  /// its signatures share; set_cuda_graphs() or WICK_CUDA_GRAPHS=0 turns graphs off everywhere.
  bool cuda_graphs = true;
};

/// Figures of the most recent trace, for tests and `wick bench`.
struct CompileStats {
  size_t traces = 0;          // traces made so far (cache misses)
  size_t cache_hits = 0;
  size_t cache_entries = 0;
  size_t nodes_traced = 0;    // ops in the raw trace
  size_t nodes_planned = 0;   // ops after the passes
  size_t kernels_planned = 0; // of those, ops that run a kernel (not views)
  size_t fused_elementwise = 0, fused_patterns = 0, merged = 0, folded = 0;
  /// Peak bytes of the plan's intermediates when each is freed after its last use (inputs and
  /// constants not counted), in the order evaluation runs them.
  size_t plan_peak_bytes = 0;
  /// CUDA graphs of the cached signatures: recorded, replayed, and recordings that failed (those
  /// signatures replay lazily); why the last one failed; device bytes the graphs' pool keeps.
  size_t graph_captures = 0, graph_replays = 0, graph_failures = 0;
  std::string graph_failure;
  size_t graph_bytes = 0;
};

/// A compiled function: call it like the function. Each call with a new signature (input
/// shapes, dtypes, devices) traces the function on placeholder inputs (the function must not
/// evaluate or read data while traced); later calls replay the optimised graph, which builds the
/// outputs as lazy tensors without calling the function. Tensors the function captures (not
/// inputs) are constants of the trace: pass anything that changes between calls as an input.
/// Randomness inside the function is fixed at trace time (draw it outside and pass it in).
/// Differentiate first and compile the result (compile(value_and_grad-based step)), not the
/// other way round.
class CompiledFunction {
 public:
  CompiledFunction(Function fn, CompileOptions opts);
  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs);
  CompileStats stats() const;
  /// The optimised graph of the last trace, one op per line (debugging).
  std::string describe() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

CompiledFunction compile(Function fn, CompileOptions opts = {});

}  // namespace wick
