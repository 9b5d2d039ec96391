// A multi-tensor AdamW step: one kernel updates many parameters, reading each parameter,
// gradient and moment where it lies. A LoRA model has a few hundred small matrices; gathering
// them into one vector first (as the optimizer did) copied every byte an extra time, and a
// kernel per tensor would cost each its launch.
#include <algorithm>

#include "backend/cuda/common.cuh"
#include "core/adamw_rule.h"

namespace wick::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = kThreads * 8;  // elements a block updates
// Tensors a launch takes: its table travels as a kernel parameter (at most 4 KiB).
constexpr int kPerLaunch = 48;

struct Table {
  AdamWTensor t[kPerLaunch];
  int64_t first_block[kPerLaunch + 1];  // blocks of tensor i: [first_block[i], first_block[i + 1])
  int count;
  const float* scalars[3];   // 1 − lr·wd, lr / (1 − β1ᵗ), sqrt(1 − β2ᵗ), on the device
  detail::AdamWConstants c;  // the rest, from the host
  float* out;                // [3, total]
  int64_t total;
};

template <class P, class G>
__global__ void __launch_bounds__(kThreads) adamw_kernel(const __grid_constant__ Table a) {
  allow_dependents();
  wait_for_inputs();
  int i = 0;
  while (i + 1 < a.count && blockIdx.x >= a.first_block[i + 1]) ++i;
  const AdamWTensor& t = a.t[i];
  detail::AdamWConstants c = a.c;
  c.decay = *a.scalars[0];
  c.step_size = *a.scalars[1];
  c.bc2_sqrt = *a.scalars[2];
  const int64_t begin = (blockIdx.x - a.first_block[i]) * kChunk, end = min(t.n, begin + kChunk);
  const P* p = static_cast<const P*>(t.p);
  const G* g = static_cast<const G*>(t.g);
  float* po = a.out + t.at;
  float* mo = po + a.total;
  float* vo = mo + a.total;
  for (int64_t k = begin + threadIdx.x; k < end; k += kThreads) {
    float m = t.m[k], v = t.v[k], pn;
    detail::adamw_element(c, t.decays, static_cast<float>(ld(p + k)), static_cast<float>(ld(g + k)),
                          m, v, pn);
    po[k] = pn;
    mo[k] = m;
    vo[k] = v;
  }
}

}  // namespace

void adamw(DType pt, DType gt, std::span<const AdamWTensor> tensors, const float* const scalars[3],
           const detail::AdamWConstants& c, float* out, int64_t total) {
  for (size_t first = 0; first < tensors.size(); first += kPerLaunch) {
    Table a{};
    a.count = static_cast<int>(std::min<size_t>(kPerLaunch, tensors.size() - first));
    for (int i = 0; i < a.count; ++i) {
      a.t[i] = tensors[first + i];
      a.first_block[i + 1] =
          a.first_block[i] + std::max<int64_t>(1, (a.t[i].n + kChunk - 1) / kChunk);
    }
    for (int s = 0; s < 3; ++s) a.scalars[s] = scalars[s];
    a.c = c;
    a.out = out;
    a.total = total;
    const auto blocks = static_cast<unsigned>(a.first_block[a.count]);
    dispatch(pt, [&]<class P>() {
      if constexpr (std::is_same_v<P, float> || is_half_v<P>) {
        dispatch(gt, [&]<class G>() {
          if constexpr (std::is_same_v<G, float> || is_half_v<G>)
            launch_overlapped(adamw_kernel<P, G>, blocks, kThreads, 0, a);
          else
            throw Error(std::string("adamw_step: gradients of dtype ") + dtype_name(gt) +
                        " (f32, bf16 or f16 expected)");
        });
      } else {
        throw Error(std::string("adamw_step: parameters of dtype ") + dtype_name(pt) +
                    " (f32, bf16 or f16 expected)");
      }
    });
    check_launch("adamw");
  }
}

}  // namespace wick::cuda
