// SyncBatchNorm: BatchNorm whose training-mode statistics are those of the global batch, all
// ranks' samples together (torch.nn.SyncBatchNorm), so N ranks x batch B normalise exactly as one
// rank with batch N*B. Forward all-reduces per-channel [sum, sum of squares, count] (float64);
// backward all-reduces [sum dy, sum dy * x_hat]; weight and bias gradients stay local, as any
// parameter's, for the gradient reducer.
#pragma once

#include <torch/torch.h>

namespace odyssey {

class Communicator;

// The communicator BatchNorm layers synchronise over while training (nullptr = plain, per-rank
// BatchNorm, the default). Process-wide: set by the trainer when dist.sync_bn is on.
void set_batch_norm_sync(Communicator* comm);
Communicator* batch_norm_sync();

// Training-mode batch norm of x [N,C,...] with the global batch's mean and biased variance;
// updates running_mean / running_var in place (unbiased variance, like torch) with momentum.
torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor running_mean,
                              torch::Tensor running_var, double momentum, double eps,
                              Communicator& comm);

}  // namespace odyssey
