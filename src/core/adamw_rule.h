#pragma once
// AdamW's update of one element (torch's rule, in f32), shared by the CPU and CUDA kernels of
// AdamWStep so both devices round alike.
#include <cmath>

#include "core/host_device.h"

namespace wick::detail {

/// The step's constants: β1, 1 − β1, β2, 1 − β2 and eps as f32, and the step's scalars
/// 1 − lr·wd, lr / (1 − β1ᵗ) and sqrt(1 − β2ᵗ).
struct AdamWConstants {
  float b1, one_minus_b1, b2, one_minus_b2, eps;
  float decay, step_size, bc2_sqrt;
};

/// torch: p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g·g;
///        p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps)
/// One rounding per operation, in that order (as the composed ops computed it before).
WICK_HOST_DEVICE void adamw_element(const AdamWConstants& c, bool decays, float p, float g,
                                    float& m, float& v, float& p_out) {
  const float p1 = decays ? p * c.decay : p;
  m = m * c.b1 + g * c.one_minus_b1;
  v = v * c.b2 + (g * c.one_minus_b2) * g;
  const float denom = sqrtf(v) / c.bc2_sqrt + c.eps;
  p_out = p1 - c.step_size * (m / denom);
}

}  // namespace wick::detail
