// Optimizer kernels: AdamWStep over many tensors at once.
#include "backend/cpu/kernel.h"
#include "core/adamw_rule.h"
#include "graph/primitives.h"

namespace wick::detail {
using namespace cpu;

namespace {

/// Element i (in row-major order) of n, widened to f32; a strided walk only where n is not dense.
template <class T>
float element(const Node& n, const T* base, int64_t i) {
  if (n.contiguous()) return static_cast<float>(load(base + i));
  int64_t off = 0;
  for (size_t d = n.shape.size(); d-- > 0;) {
    off += (i % n.shape[d]) * n.strides[d];
    i /= n.shape[d];
  }
  return static_cast<float>(load(base + off));
}

}  // namespace

void AdamWStep::eval_cpu(std::span<Node* const> in, Node& out) {
  const size_t n = decays.size();
  alloc_output(out);
  const int64_t total = out.shape[1];
  float* po = out.data<float>();
  float* mo = po + total;
  float* vo = mo + total;
  AdamWConstants c = constants();
  c.decay = *in[4 * n]->data<float>();
  c.step_size = *in[4 * n + 1]->data<float>();
  c.bc2_sqrt = *in[4 * n + 2]->data<float>();
  dispatch_float(in[0]->dtype, "adamw_step", [&]<class P>() {
    dispatch_float(in[n]->dtype, "adamw_step", [&]<class G>() {
      int64_t at = 0;
      for (size_t t = 0; t < n; ++t) {
        const Node &p = *in[t], &g = *in[n + t], &m = *in[2 * n + t], &v = *in[3 * n + t];
        const P* pp = p.data<P>();
        const G* gp = g.data<G>();
        const float *mp = m.data<float>(), *vp = v.data<float>();
        const bool d = decays[t];
        parallel_for(p.size(), 16, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            float mi = element(m, mp, i), vi = element(v, vp, i);
            adamw_element(c, d, element(p, pp, i), element(g, gp, i), mi, vi, po[at + i]);
            mo[at + i] = mi;
            vo[at + i] = vi;
          }
        });
        at += p.size();
      }
    });
  });
}

}  // namespace wick::detail
