// Parameter and gradient synchronisation over a Communicator: broadcast of the initial state,
// gradient averaging after backward, averaging of BatchNorm running statistics.
#pragma once

#include <torch/nn/module.h>

#include <vector>

#include "dist/communicator.h"

namespace odyssey {

// Averages gradients across ranks with one all-reduce over a flat buffer (reused across steps).
// Every rank passes the same parameters in the same order.
class GradientAverager {
 public:
  explicit GradientAverager(std::vector<torch::Tensor> params);
  void average(Communicator& comm);

 private:
  std::vector<torch::Tensor> params_;
  torch::Tensor flat_;
};

// Copies rank 0's parameters and buffers to every rank.
void broadcast_module(Communicator& comm, torch::nn::Module& module, int root = 0);

// Replaces floating-point buffers (BatchNorm running mean/var) by their mean over ranks, so that
// evaluation and checkpoints see one model.
void average_buffers(Communicator& comm, torch::nn::Module& module);

}  // namespace odyssey
