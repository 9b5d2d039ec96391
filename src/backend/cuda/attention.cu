// Scaled dot-product attention, forward: an online softmax in f32 per query row, so the [T, S]
// scores never exist in memory. Grouped-query heads share their key/value head.
// Keys past the causal limit (s > t + S − T) are skipped.
#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

// One block per query row; its warps take interleaved keys, each with its own online softmax,
// and the warps' partial results are merged at the end (a decoding step has only B·Hq rows, so
// splitting the keys is what keeps its latency down). A key the mask hides (−inf) is skipped
// before its row is read: a step over a whole preallocated cache pays only for the positions
// written so far.
constexpr int kWarps = 8;

template <class T, int NV>
__global__ void attention_kernel(const __grid_constant__ AttentionArgs a) {
  __shared__ float part_m[kWarps], part_l[kWarps];
  __shared__ float part_acc[kWarps][32 * NV];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row = blockIdx.x;
  int64_t t = row % a.T, h = (row / a.T) % a.Hq, b = row / (a.T * a.Hq);
  int64_t hk = h / (a.Hq / a.Hkv);
  const T* q = static_cast<const T*>(a.q) + b * a.qs[0] + h * a.qs[1] + t * a.qs[2];
  const T* k = static_cast<const T*>(a.k) + b * a.ks[0] + hk * a.ks[1];
  const T* v = static_cast<const T*>(a.v) + b * a.vs[0] + hk * a.vs[1];
  const float* mask =
      a.mask ? static_cast<const float*>(a.mask) + b * a.ms[0] + h * a.ms[1] + t * a.ms[2]
             : nullptr;
  float qr[NV], acc[NV];
  for (int j = 0; j < NV; ++j) {
    int64_t d = lane + 32 * j;
    qr[j] = d < a.D ? static_cast<float>(ld(q + d * a.qs[3])) : 0.0f;
    acc[j] = 0.0f;
  }
  int64_t end = a.causal ? t + (a.S - a.T) + 1 : a.S;
  if (end > a.S) end = a.S;
  float m = -INFINITY, l = 0.0f;
  for (int64_t s = warp; s < end; s += kWarps) {
    float bias = mask ? mask[s * a.ms[3]] : 0.0f;
    if (bias == -INFINITY) continue;
    const T* kr = k + s * a.ks[2];
    float dot = 0.0f;
    for (int j = 0; j < NV; ++j) {
      int64_t d = lane + 32 * j;
      if (d < a.D) dot += qr[j] * static_cast<float>(ld(kr + d * a.ks[3]));
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    float score = dot * a.scale + bias;
    if (score == -INFINITY) continue;
    float nm = fmaxf(m, score);
    float corr = expf(m - nm), p = expf(score - nm);
    l = l * corr + p;
    const T* vr = v + s * a.vs[2];
    for (int j = 0; j < NV; ++j) {
      int64_t d = lane + 32 * j;
      float vv = d < a.D ? static_cast<float>(ld(vr + d * a.vs[3])) : 0.0f;
      acc[j] = acc[j] * corr + p * vv;
    }
    m = nm;
  }
  if (lane == 0) {
    part_m[warp] = m;
    part_l[warp] = l;
  }
  for (int j = 0; j < NV; ++j) part_acc[warp][lane + 32 * j] = acc[j];
  __syncthreads();
  if (warp != 0) return;
  float top = -INFINITY;
  for (int w = 0; w < kWarps; ++w) top = fmaxf(top, part_m[w]);
  float total = 0.0f, out[NV] = {};
  for (int w = 0; w < kWarps; ++w) {
    if (part_m[w] == -INFINITY) continue;  // a warp that saw no visible key
    float c = expf(part_m[w] - top);
    total += part_l[w] * c;
    for (int j = 0; j < NV; ++j) out[j] += part_acc[w][lane + 32 * j] * c;
  }
  T* o = static_cast<T*>(a.out) + row * a.D;
  float inv = total > 0.0f ? 1.0f / total : 0.0f;  // a fully masked row gives 0, as on the CPU
  for (int j = 0; j < NV; ++j) {
    int64_t d = lane + 32 * j;
    if (d < a.D) st(o + d, out[j] * inv);
  }
}

template <class T>
void launch(const AttentionArgs& a) {
  unsigned blocks = static_cast<unsigned>(a.B * a.Hq * a.T);
  cudaStream_t s = launch_stream();
  if (a.D <= 64)
    attention_kernel<T, 2><<<blocks, 32 * kWarps, 0, s>>>(a);
  else if (a.D <= 128)
    attention_kernel<T, 4><<<blocks, 32 * kWarps, 0, s>>>(a);
  else
    attention_kernel<T, 8><<<blocks, 32 * kWarps, 0, s>>>(a);
}

}  // namespace

void attention(const AttentionArgs& a) {
  if (a.B * a.Hq * a.T == 0) return;
  if (a.D > 256)
    throw Error("scaled_dot_product_attention: head dimension " + std::to_string(a.D) +
                " is above the CUDA kernel's 256");
  if (a.t == DType::f64)
    throw Error("scaled_dot_product_attention: f64 has no CUDA kernel; use the CPU");
  dispatch_float(a.t, "scaled_dot_product_attention", [&]<class T>() {
    if constexpr (!std::is_same_v<T, double>) launch<T>(a);
  });
  check_launch("scaled_dot_product_attention");
}

}  // namespace wick::cuda
