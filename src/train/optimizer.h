// Optimizers with their state as named tensors (allocated up front), so checkpoints and resume
// see every number: SGD (momentum, Nesterov) and AdamW.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace odyssey {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class Optimizer {
 public:
  // Weight decay applies to parameters with 2+ dimensions only (conv and linear weights), not to
  // biases and normalisation parameters.
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;

  // One update of every parameter with the gradients in .grad() at this learning rate.
  virtual void step(double lr) = 0;
  void zero_grad();

  // State for checkpoints: "<parameter name>/<slot>" -> tensor (live; copy_ into them to load).
  const NamedTensors& state() const { return state_; }

 protected:
  torch::Tensor& add_state(const std::string& param, const std::string& slot,
                           const torch::Tensor& like);
  NamedTensors params_;
  NamedTensors state_;
};

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, NamedTensors params);

// Peak learning rate after the scaling rule: lr x global_batch / 256 when lr_scaling = "linear".
double scaled_lr(const OptimConfig& cfg, int64_t global_batch);

// Learning rate at a step: linear warmup from 0, then cosine to min_lr_ratio x peak, or constant.
double lr_at(const ScheduleConfig& cfg, double peak, int64_t step, int64_t warmup_steps,
             int64_t total_steps);

}  // namespace odyssey
