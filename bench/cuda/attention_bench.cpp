// Times scaled_dot_product_attention alone on the GPU at prefill shapes: batch 8 × 512 tokens,
// bf16, causal, the Qwen2.5-0.5B width as 14 heads of 64 (2 KV heads) and as 7 heads of 128
// (1 KV head), without a mask and with a padding mask (row b of the batch keeps its first
// 512 − 48·b keys, as right-padded prompts of different lengths have). Run it once as it is
// and once with WICK_FLASH=0 (the GEMM path) for the comparison:
//
//   g++ -O2 -std=c++20 -Iinclude bench/cuda/attention_bench.cpp -Lbuild/src -lwick -o /tmp/ab
//   LD_LIBRARY_PATH=build/src /tmp/ab; WICK_FLASH=0 LD_LIBRARY_PATH=build/src /tmp/ab
//
// Prints one JSON line per case: microseconds per call (median of 7 rounds of 20 calls, each
// round one evaluation ended by reading a value back, so the GPU's work is done) and TFLOP/s
// counting the causal half of the scores.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "wick/wick.h"

using namespace wick;

int main() {
  if (cuda_device_count() == 0) {
    std::fprintf(stderr, "attention_bench: no CUDA device\n");
    return 1;
  }
  const Device gpu = Device::cuda(0);
  const int64_t B = 8, T = 512;
  Generator gen(7);
  for (int64_t D : {64, 128}) {
    const int64_t H = 896 / D, KV = D == 64 ? 2 : 1;
    Tensor q = to(normal({B, H, T, D}, gen, 0.0, 1.0, DType::bf16), gpu).eval();
    Tensor k = to(normal({B, KV, T, D}, gen, 0.0, 1.0, DType::bf16), gpu).eval();
    Tensor v = to(normal({B, KV, T, D}, gen, 0.0, 1.0, DType::bf16), gpu).eval();
    std::vector<bool> keep(static_cast<size_t>(B * T));
    for (int64_t i = 0; i < B * T; ++i) keep[static_cast<size_t>(i)] = i % T < T - 48 * (i / T);
    Tensor mask = to(Tensor::from_vector(keep, {B, 1, 1, T}), gpu).eval();
    for (bool masked : {false, true}) {
      auto call = [&] {
        return masked ? scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(double(D)), true, mask)
                      : scaled_dot_product_attention(q, k, v, 1.0 / std::sqrt(double(D)), true);
      };
      // A round's calls go to the GPU as one evaluation, so the host's cost per call is not timed.
      auto round = [&](int calls) {
        std::vector<Tensor> outs;
        for (int i = 0; i < calls; ++i) outs.push_back(call());
        eval(outs);
        (void)sum(slice(reshape(outs.back(), {-1}), 0, 0, 1)).item<float>();
      };
      round(3);
      std::vector<double> us;
      for (int r = 0; r < 7; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        round(20);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 20);
      }
      std::sort(us.begin(), us.end());
      const double flop = 4.0 * B * H * T * T * D / 2;
      std::printf("{\"head_dim\": %lld, \"masked\": %s, \"us\": %.1f, \"tflops\": %.1f}\n",
                  static_cast<long long>(D), masked ? "true" : "false", us[3], flop / us[3] / 1e6);
    }
  }
  return 0;
}
