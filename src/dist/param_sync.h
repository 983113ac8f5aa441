// Parameter synchronisation over a Communicator: broadcast of the initial state and averaging of
// BatchNorm running statistics. (Gradients: GradientReducer.)
#pragma once

#include <torch/nn/module.h>

#include <vector>

#include "dist/communicator.h"

namespace odyssey {

// Copies rank 0's parameters and buffers to every rank.
void broadcast_module(Communicator& comm, torch::nn::Module& module, int root = 0);

// Replaces floating-point buffers (BatchNorm running mean/var) by their mean over ranks, so that
// evaluation and checkpoints see one model.
void average_buffers(Communicator& comm, torch::nn::Module& module);
// The same for floating-point tensors given (the EMA's buffer averages): each becomes the mean over
// ranks. A collective: every rank passes the same shapes in the same order.
void average_tensors(Communicator& comm, const std::vector<torch::Tensor>& tensors);

}  // namespace odyssey
