// Mixed precision: an autocast scope for the forward pass (bf16 on CPU and CUDA, fp16 on CUDA)
// and the dynamic loss scaler fp16 needs (as torch.cuda.amp.GradScaler: x2 after growth_interval
// clean steps, x0.5 and the step skipped on an overflow). Weights, optimizer state and the
// gradient all-reduce stay float32.
#pragma once

#include <torch/types.h>

#include <string>

#include "train/optimizer.h"

namespace odyssey {

// Checks that precision can run on device; throws an Error naming train.precision otherwise.
void check_precision(const std::string& precision, const torch::Device& device,
                     const std::string& where);

// Whether autocast is on for CUDA (cuda) or the CPU (!cuda) on this thread.
bool autocast_enabled(bool cuda);

// Whether t is a dense float32 CPU tensor and CPU autocast is off on this thread: where Odyssey's
// own CPU kernels (depthwise filter gradient, oneDNN linear and attention) may replace LibTorch's.
bool plain_cpu_float32(const torch::Tensor& t);

// Autocast on for this scope (nothing for "fp32").
class AutocastScope {
 public:
  AutocastScope(const std::string& precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;  // fp32: the scope does nothing
  bool cuda_ = false;    // CUDA autocast (else the CPU's)
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kBFloat16;
};

class LossScaler {
 public:
  explicit LossScaler(double init_scale = 65536.0, int64_t growth_interval = 2000);

  double scale() const;
  // After the all-reduce: divides the gradients by the scale; false (and the scale halved) when
  // any is not finite, then the update must be skipped. Every rank holds the same gradients, so
  // every rank decides alike.
  bool unscale_and_check(const NamedTensors& params);

  // "amp/scale", "amp/clean_steps" for checkpoints (live; copy_ into them to load).
  const NamedTensors& state() const { return state_; }
  // Whether a checkpoint's /optimizer dataset is the scaler's (written by fp16 runs only).
  static bool is_state_name(const std::string& name);

 private:
  int64_t growth_interval_;
  NamedTensors state_;  // double [1] each
};

}  // namespace odyssey
