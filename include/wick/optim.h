#pragma once
// Optimisers, learning-rate schedules, gradient clipping and accumulation with exactly
// PyTorch's update rules (REFERENCE.md). Updates are lazy tensors: the new parameters and
// optimizer state can be evaluated together with the forward and backward pass as one graph.
// Per-step scalars (learning rate, bias corrections) enter the graph as 0-d f32 tensors, so a
// compiled training step takes them as inputs instead of being retraced every step.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "wick/transforms.h"

namespace wick {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  /// Parameters (by name) that weight decay skips; empty: decay applies to every parameter, as
  /// torch.optim.AdamW does with one parameter group.
  std::function<bool(const std::string& name)> no_decay = {};
};

/// AdamW (torch.optim.AdamW, decoupled weight decay). The step counter t counts optimizer steps
/// (one for all parameters). Moments are kept in f32 whatever the parameters' dtype.
class AdamW {
 public:
  explicit AdamW(AdamWOptions opts = {});

  /// Builds one optimizer step at learning rate `lr`: returns the new parameters (same names,
  /// dtypes) and replaces the moments with their new (lazy) values. Parameters without a
  /// gradient are returned unchanged. Moments start at zero on a parameter's first step.
  TensorMap step(const TensorMap& params, const TensorMap& grads, double lr);
  TensorMap step(const TensorMap& params, const TensorMap& grads) { return step(params, grads, opts_.lr); }

  /// The per-step scalars of step t+1 at learning rate lr, as 0-d f32 tensors, in the order
  /// update() takes them.
  std::vector<Tensor> step_scalars(double lr) const;
  /// The pure update: (params, grads, m, v, scalars) -> (params, m, v); `step` uses it.
  struct Result {
    TensorMap params, m, v;
  };
  Result update(const TensorMap& params, const TensorMap& grads, const TensorMap& m, const TensorMap& v,
                const std::vector<Tensor>& scalars) const;

  int64_t steps() const { return t_; }
  const AdamWOptions& options() const { return opts_; }
  const TensorMap& first_moments() const { return m_; }
  const TensorMap& second_moments() const { return v_; }
  /// Installs state (after a compiled step computed it, or when resuming).
  void set_state(TensorMap m, TensorMap v, int64_t t);

  /// State as named tensors ("m.<param>", "v.<param>", "step") for checkpoints.
  TensorMap state_dict() const;
  void load_state_dict(const TensorMap& state);

 private:
  AdamWOptions opts_;
  TensorMap m_, v_;
  int64_t t_ = 0;
};

struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // coupled (added to the gradient), as torch.optim.SGD
  bool nesterov = false;
};

/// SGD with momentum (torch.optim.SGD).
class Sgd {
 public:
  explicit Sgd(SgdOptions opts = {});
  TensorMap step(const TensorMap& params, const TensorMap& grads, double lr);
  TensorMap step(const TensorMap& params, const TensorMap& grads) { return step(params, grads, opts_.lr); }
  TensorMap state_dict() const;
  void load_state_dict(const TensorMap& state);

 private:
  SgdOptions opts_;
  TensorMap buf_;
};

/// Learning-rate schedules as in transformers: `lr(step)` for the 0-based optimizer step.
struct LrSchedule {
  enum class Kind { constant, linear, cosine };
  Kind kind = Kind::constant;
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;  // linear ramp from 0 over these steps
  int64_t total_steps = 0;   // linear/cosine: decay ends here
  double min_lr = 0.0;       // cosine: the floor

  double lr(int64_t step) const;
  /// Parses "constant", "linear", "cosine".
  static Kind parse(const std::string& name);
};

/// Global L2-norm clipping (torch.nn.utils.clip_grad_norm_): returns the clipped gradients and
/// the total norm before clipping (f32 0-d). Scales by max_norm / (norm + 1e-6) when the norm
/// exceeds max_norm.
std::pair<TensorMap, Tensor> clip_grad_norm(const TensorMap& grads, double max_norm);
/// The total L2 norm of the gradients (f32 0-d).
Tensor global_norm(const TensorMap& grads);

/// Sums gradients over micro-batches; `average()` divides by their count.
class GradAccumulator {
 public:
  void add(const TensorMap& grads);
  int count() const { return count_; }
  TensorMap average() const;
  const TensorMap& total() const { return sum_; }
  void reset();

 private:
  TensorMap sum_;
  int count_ = 0;
};

}  // namespace wick
