// Scaled dot-product attention, forward: one warp per query row with an online softmax in f32,
// so the [T, S] scores never exist in memory. Grouped-query heads share their key/value head.
// Keys past the causal limit (s > t + S − T) are skipped.
#include "backend/cuda/common.cuh"

namespace wick::cuda {
namespace {

template <class T, int NV>
__global__ void attention_kernel(const __grid_constant__ AttentionArgs a) {
  int lane = threadIdx.x & 31;
  int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  int64_t rows = a.B * a.Hq * a.T;
  if (row >= rows) return;
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
  for (int64_t s = 0; s < end; ++s) {
    const T* kr = k + s * a.ks[2];
    float dot = 0.0f;
    for (int j = 0; j < NV; ++j) {
      int64_t d = lane + 32 * j;
      if (d < a.D) dot += qr[j] * static_cast<float>(ld(kr + d * a.ks[3]));
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    float score = dot * a.scale + (mask ? mask[s * a.ms[3]] : 0.0f);
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
  T* o = static_cast<T*>(a.out) + row * a.D;
  float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a fully masked row gives 0, as on the CPU
  for (int j = 0; j < NV; ++j) {
    int64_t d = lane + 32 * j;
    if (d < a.D) st(o + d, acc[j] * inv);
  }
}

template <class T>
void launch(const AttentionArgs& a) {
  int64_t rows = a.B * a.Hq * a.T;
  unsigned blocks = static_cast<unsigned>((rows * 32 + 255) / 256);
  cudaStream_t s = active().stream;
  if (a.D <= 64)
    attention_kernel<T, 2><<<blocks, 256, 0, s>>>(a);
  else if (a.D <= 128)
    attention_kernel<T, 4><<<blocks, 256, 0, s>>>(a);
  else
    attention_kernel<T, 8><<<blocks, 256, 0, s>>>(a);
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
