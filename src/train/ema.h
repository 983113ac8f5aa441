// Ema: an exponential moving average of the model's parameters and of its floating-point buffers
// (BatchNorm's running mean and variance; Polyak averaging, as timm's ModelEmaV2/V3 and
// TensorFlow's EfficientNet average them), updated after every optimizer step and swapped in for
// evaluation, checkpoints' /ema group and export. Averaged statistics belong to the averaged
// weights: the live statistics, computed with the live weights, drift away from them when the
// average lags by thousands of steps (decay 0.9999). Integer buffers (num_batches_tracked) are
// not averaged. Every rank holds the same parameters, hence the same parameter average; buffer
// averages are per rank like the live buffers and averaged over ranks with them (buffers()).
#pragma once

#include <torch/types.h>

#include <vector>

#include "train/optimizer.h"

namespace odyssey {

class Ema {
 public:
  // decay: weight of the old average; warmup: decay min(decay, (1 + t) / (10 + t)) at update t.
  Ema(NamedTensors params, NamedTensors buffers, double decay, bool warmup);

  // Restarts the average at the live parameters and buffers.
  void reset();
  // Restarts only the buffers' averages at the live buffers.
  void reset_buffers();
  // avg = d x avg + (1 - d) x live, for the t-th update (t counts from 1).
  void update(int64_t t);
  double decay_at(int64_t t) const;
  // Exchanges the averages with the live tensors; calling it again swaps back.
  void swap();

  // "<name>" -> average, parameters first, then the averaged buffers (live tensors; copy_ into
  // them to load a checkpoint's /ema).
  const NamedTensors& state() const { return avg_; }
  size_t parameter_count() const { return param_count_; }
  // The buffers' averages (to average over ranks where the live buffers are).
  std::vector<torch::Tensor> buffers() const;

 private:
  NamedTensors live_, avg_;  // parameters, then floating-point buffers
  size_t param_count_ = 0;
  std::vector<torch::Tensor> spare_;
  double decay_;
  bool warmup_;
};

}  // namespace odyssey
