// A LoRA linear layer on the wick engine: build lazily, evaluate asynchronously while the next
// step is being built, read results, and check the fused op against the plain expression.
//
//   y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ      x [batch, seq, in], W [out, in], A [r, in], B [out, r], s = α/r
//
// Build and run:  ninja -C build example_lora_engine && build/examples/example_lora_engine
#include <wick/wick.h>

#include <cmath>
#include <cstdio>
#include <vector>

using namespace wick;

namespace {

void describe(const char* name, const Tensor& t) {
  std::printf("  %-6s shape %-13s %s  evaluated: %s\n", name, shape_str(t.shape()).c_str(),
              dtype_name(t.dtype()), t.is_evaluated() ? "yes" : "no");
}

}  // namespace

int main() {
  const int64_t batch = 4, seq = 16, in = 512, out = 512, rank = 8;
  const double alpha = 16, scale = alpha / rank;  // PEFT scaling: alpha / r

  // All randomness comes from one explicit, seeded generator: same seed, same numbers.
  Generator gen(42);
  const double bound = 1 / std::sqrt(double(in));
  Tensor w = normal({out, in}, gen, 0.0, bound);         // the frozen base weight
  Tensor a = uniform({rank, in}, gen, -bound, bound);    // PEFT's initialisation of A
  Tensor b = normal({out, rank}, gen, 0.0, 0.02);        // PEFT starts B at 0; non-zero here so
                                                          // that the LoRA term shows
  eval({w, a, b});  // the weights are evaluated once and reused by every step

  // Building never computes: the result knows its shape and dtype at once.
  Tensor x = normal({batch, seq, in}, gen);
  Tensor y = lora_linear(x, w, std::nullopt, a, b, scale);
  std::printf("built step 0 (nothing computed yet):\n");
  describe("x", x);
  describe("y", y);

  // eval_async hands the graph to the engine's worker and returns at once; meanwhile this
  // thread builds the next step. Future::get() waits and rethrows any evaluation error.
  std::printf("\npipelined steps (step n+1 is built while step n runs):\n");
  const int steps = 4;
  Future running = eval_async({y});
  for (int step = 0; step < steps; ++step) {
    Tensor next_x, next_y;
    Future next;
    if (step + 1 < steps) {
      next_x = normal({batch, seq, in}, gen);
      next_y = lora_linear(next_x, w, std::nullopt, a, b, scale);
      next = eval_async({next_y});  // queued behind the running step
    }
    running.get();  // step `step` is ready now
    std::vector<float> row = slice(y, {0, 0, 0}, {1, 1, 4}).to_vector<float>();
    float rms = std::sqrt(mean(square(y)).item<float>());
    std::printf("  step %d: y[0,0,:4] = [%+.4f %+.4f %+.4f %+.4f]  rms %.4f\n", step, row[0],
                row[1], row[2], row[3], rms);
    if (step + 1 < steps) {
      x = next_x;
      y = next_y;
      running = next;
    }
  }

  MemoryStats m = memory_stats();
  std::printf("\nmemory (cpu): active %.2f MiB, peak %.2f MiB, cached %.2f MiB, %zu allocations "
              "(%zu from the cache)\n",
              m.active / 1048576.0, m.peak / 1048576.0, m.cached / 1048576.0, m.allocations,
              m.cache_hits);

  // The fused op (the last step's y) against the unfused expression it stands for.
  Tensor plain = matmul(x, transpose(w)) + scale * matmul(matmul(x, transpose(a)), transpose(b));
  const Tensor& fused = y;
  double max_diff = max(abs(fused - plain)).item<double>();
  std::printf("lora_linear vs x·Wᵀ + s·(x·Aᵀ)·Bᵀ: max |difference| = %.3g\n", max_diff);
  if (!(max_diff < 1e-4)) {
    std::printf("MISMATCH\n");
    return 1;
  }
  return 0;
}
