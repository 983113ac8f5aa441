// Optimizers with their state as named tensors (allocated up front), so checkpoints and resume
// see every number: SGD (momentum, Nesterov), AdamW, RMSprop in TensorFlow's form (EfficientNet),
// LAMB and LARS (large batches). Per-parameter settings carry weight decay on/off and the
// learning-rate scale of layer-wise decay. Also: clipping by global norm, the LR schedules.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace odyssey {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// How one parameter is updated: its learning rate is lr x lr_scale; weight decay applies when
// decay is true.
struct ParamSettings {
  double lr_scale = 1.0;
  bool decay = true;
};

// The settings of each parameter under cfg. Weight decay: conv and linear weights only, not
// biases, normalisation parameters, ViT's class token and position embeddings (unless
// optim.decay_bias_and_norm). Layer decay (optim.layer_decay < 1): ViT blocks, and the entries
// of a `features` sequence (EfficientNet's stages, the small CNNs' layers), get
// lr x layer_decay^(depth - layer id), the head 1, the stem the smallest; models named otherwise
// are refused with an error naming the key.
std::vector<ParamSettings> param_settings(const OptimConfig& cfg, const NamedTensors& params);

class Optimizer {
 public:
  Optimizer(NamedTensors params, std::vector<ParamSettings> settings);
  virtual ~Optimizer() = default;

  // One update of every parameter with the gradients in .grad() at this (base) learning rate.
  virtual void step(double lr) = 0;
  void zero_grad();

  // State for checkpoints: "<parameter name>/<slot>" -> tensor (live; copy_ into them to load).
  const NamedTensors& state() const { return state_; }
  const NamedTensors& params() const { return params_; }

 protected:
  torch::Tensor& add_state(const std::string& param, const std::string& slot,
                           const torch::Tensor& like, double fill = 0.0);
  // A step count in the state ("step", for bias corrections); next_count() returns the new count.
  void add_count();
  double next_count();
  NamedTensors params_;
  std::vector<ParamSettings> settings_;
  NamedTensors state_;
  torch::Tensor count_;  // double [1]; Adam-style optimizers only
};

// params: the trainable parameters, with settings from param_settings(cfg, params).
std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, NamedTensors params);

// Scales all gradients so that their global L2 norm is at most max_norm (no-op when it is
// already); returns the norm before clipping, a 0-dim double tensor on the gradients' device
// (read it only when it is reported: on a GPU reading waits for the step). Every rank holds the
// same averaged gradients, so every rank computes the same norm and clips alike.
torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm);
// The global L2 norm of the gradients: a 0-dim double tensor on their device (0 when none).
torch::Tensor grad_norm(const NamedTensors& params);

// Peak learning rate after the scaling rule: lr x global_batch / 256 when lr_scaling = "linear".
double scaled_lr(const OptimConfig& cfg, int64_t global_batch);

// Learning rate at a step: linear warmup from warmup_start x peak (step s of W at
// (s + 1) / W of the way, so step W - 1 is at the peak), then (by step) cosine towards
// min_lr_ratio x peak (reached at total_steps, one after the last), step decay (x decay_rate
// every decay_epochs, a staircase: EfficientNet's 0.97 every 2.4 epochs), exponential decay
// (x decay_rate^(epochs / decay_epochs), continuous), or constant. steps_per_epoch converts
// the epoch-based keys.
double lr_at(const ScheduleConfig& cfg, double peak, int64_t step, int64_t warmup_steps,
             int64_t total_steps, int64_t steps_per_epoch = 1);

}  // namespace odyssey
