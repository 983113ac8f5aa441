// BatchNorm2d for the zoo: torch::nn::BatchNorm2d's parameters, buffers, names and arithmetic
// (weights load, torchvision parity holds), switched to SyncBatchNorm while training when the
// trainer set a communicator (dist.sync_bn) and there are several ranks. Its own module rather
// than a subclass: LibTorch does not export what a derived class's construction vtables need.
#pragma once

#include <torch/torch.h>

#include <ostream>

namespace odyssey {

class BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t features)
      : BatchNorm2dImpl(torch::nn::BatchNormOptions(features)) {}
  explicit BatchNorm2dImpl(const torch::nn::BatchNormOptions& options);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);
  // Training: counts the batch and returns the running statistics' momentum for it (as torch:
  // no momentum = the cumulative average). The forward calls it; so does models/batch_norm_fused.h.
  double count_batch();
  // Whether a training forward all-reduces the batch statistics across ranks (dist.sync_bn).
  bool synced() const;

  torch::nn::BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};
TORCH_MODULE(BatchNorm2d);

}  // namespace odyssey
