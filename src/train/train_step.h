#pragma once
// The trainer's step functions: loss, gradients, clipping and the AdamW update of a decoder's
// trainable parameters, as one compiled plan per batch shape (or the same graph built lazily).
#include <cstdint>
#include <string>
#include <vector>

#include "wick/compile.h"
#include "wick/model.h"
#include "wick/optim.h"

namespace wick::detail {

/// The state a step consumes and produces, one tensor per trainable parameter (in name order).
struct StepState {
  std::vector<Tensor> params, m, v;
};

/// Results of one optimizer step (lazy until evaluated).
struct StepResult {
  Tensor loss;       // mean loss per target token over the step's micro-batches (f32 0-d)
  Tensor grad_norm;  // global gradient norm before clipping (f32 0-d)
  StepState next;
};

/// One micro-batch: token ids and labels [B, T] (-100 = no target), and 1 / (target tokens of
/// the whole optimizer step) as an f32 0-d tensor, so micro-batch losses add up to the mean.
struct MicroBatch {
  Tensor ids, labels, inv_targets;
};

class TrainStep {
 public:
  /// `names` are the trainable parameters of `model` (sorted). With `compiled`, every function
  /// is compiled (traced once per batch shape); otherwise the same graphs are built and evaluated
  /// lazily (needed when dropout is active: compiled randomness is fixed at trace time). With
  /// `cuda_graphs` too, the one-micro-batch step on a GPU replays as a CUDA graph per batch shape.
  TrainStep(CausalLM& model, std::vector<std::string> names, AdamWOptions adam, double max_grad_norm,
            bool compiled, bool cuda_graphs);

  /// One optimizer step over `micro` (accumulating gradients) with AdamW's per-step `scalars`.
  StepResult step(const StepState& state, const std::vector<MicroBatch>& micro, const std::vector<Tensor>& scalars);

  /// Summed loss over the target tokens of a batch (validation), with the current parameters.
  Tensor loss_sum(const std::vector<Tensor>& params, const Tensor& ids, const Tensor& labels);

  /// Kernels planned by the last compiled step trace (0 when not compiled).
  CompileStats stats() const;

 private:
  /// Σ over targets of the cross-entropy of the model with trainable parameters `p`.
  Tensor summed_loss(const std::vector<Tensor>& p, const Tensor& ids, const Tensor& labels);
  /// grads[i] of loss_sum·inv_targets w.r.t. params; returns {loss, grads...}.
  std::vector<Tensor> loss_and_grads(const std::vector<Tensor>& params, const MicroBatch& mb);
  /// (norm, params', m', v') from params, grads, moments and AdamW scalars.
  std::vector<Tensor> update(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                             const std::vector<Tensor>& m, const std::vector<Tensor>& v,
                             const std::vector<Tensor>& scalars);

  CausalLM& model_;
  std::vector<std::string> names_;
  AdamW adam_;
  double max_grad_norm_;
  bool compiled_;
  std::string head_;  // the output projection's parameter name
  // fused: one optimizer step on one micro-batch; micro / apply: accumulation; eval: validation.
  std::vector<CompiledFunction> fns_;
  Function fused_fn_, micro_fn_, apply_fn_, eval_fn_;
};

}  // namespace wick::detail
