// CUDA implementation of the optimizer primitive (AdamWStep).
#include <vector>

#include "backend/cuda/glue.h"

namespace wick::detail {
using namespace cuda;

void AdamWStep::eval_cuda(std::span<Node* const> in, Node& out) {
  const size_t n = decays.size();
  on(out);
  // A strided input (rare: the optimizer hands over whole tensors) is copied dense first.
  std::vector<std::shared_ptr<Storage>> holds(4 * n);
  std::vector<AdamWTensor> tensors(n);
  int64_t at = 0;
  for (size_t t = 0; t < n; ++t) {
    const int64_t size = in[t]->size();
    tensors[t] = {dense(*in[t], holds[t]),
                  dense(*in[n + t], holds[n + t]),
                  static_cast<const float*>(dense(*in[2 * n + t], holds[2 * n + t])),
                  static_cast<const float*>(dense(*in[3 * n + t], holds[3 * n + t])),
                  size,
                  at,
                  decays[t]};
    at += size;
  }
  alloc_output(out);
  const float* const scalars[3] = {in[4 * n]->data<float>(), in[4 * n + 1]->data<float>(),
                                   in[4 * n + 2]->data<float>()};
  adamw(in[0]->dtype, in[n]->dtype, tensors, scalars, constants(), out.data<float>(), at);
}

}  // namespace wick::detail
