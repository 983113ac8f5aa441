// Ema: an exponential moving average of the model's parameters (Polyak averaging), updated after
// every optimizer step and swapped in for evaluation, checkpoints' /ema group and export.
// Parameters only: BatchNorm statistics stay those of the live model (averaged over ranks), as
// in PyTorch's swa_utils; every rank holds the same parameters, hence the same average.
#pragma once

#include <torch/types.h>

#include "train/optimizer.h"

namespace odyssey {

class Ema {
 public:
  // decay: weight of the old average; warmup: decay min(decay, (1 + t) / (10 + t)) at update t.
  Ema(NamedTensors params, double decay, bool warmup);

  // Restarts the average at the live parameters.
  void reset();
  // avg = d x avg + (1 - d) x param, for the t-th update (t counts from 1).
  void update(int64_t t);
  double decay_at(int64_t t) const;
  // Exchanges the averages with the live parameters; calling it again swaps back.
  void swap();

  // "<parameter name>" -> average (live; copy_ into them to load a checkpoint's /ema).
  const NamedTensors& state() const { return avg_; }

 private:
  NamedTensors params_, avg_;
  std::vector<torch::Tensor> spare_;
  double decay_;
  bool warmup_;
};

}  // namespace odyssey
