// Trainer's running statistics (BatchNorm buffers): the snapshot a skipped step restores, and
// their average across ranks before evaluations and checkpoints.
#include <torch/torch.h>

#include "dist/param_sync.h"
#include "train/trainer.h"

namespace odyssey {

namespace {

// The buffers of one kind (floating-point or not) in one flat tensor (undefined when none).
torch::Tensor concatenated(const NamedTensors& buffers, bool floating) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& [name, b] : buffers)
    if (b.is_floating_point() == floating) flat.push_back(b.reshape(-1));
  return flat.empty() ? torch::Tensor() : torch::cat(flat);
}

}  // namespace

torch::Tensor Trainer::floating_buffers() const { return concatenated(buffers_, true); }

Trainer::BufferSnapshot Trainer::snapshot_buffers() const {
  return {concatenated(buffers_, true), concatenated(buffers_, false)};
}

void Trainer::restore_buffers(const BufferSnapshot& s) {
  torch::NoGradGuard no_grad;
  int64_t at_floating = 0, at_other = 0;
  for (auto& [name, b] : buffers_) {
    const bool floating = b.is_floating_point();
    int64_t& at = floating ? at_floating : at_other;
    b.copy_((floating ? s.floating : s.other).narrow(0, at, b.numel()).view(b.sizes()));
    at += b.numel();
  }
}

void Trainer::average_statistics() {
  // Once per step: the mean of equal values (sum, then divide) is not always the value itself
  // (3 ranks: ~14 % of float32 values move), and a resume must not average where the
  // uninterrupted run did not (a checkpoint on an epoch's last step averaged twice before).
  if (averaged_step_ == state_.step) return;  // alike on every rank
  averaged_step_ = state_.step;
  average_buffers(comm_, *model_);
  if (ema_) average_tensors(comm_, ema_->buffers());  // the mean of the ranks' averages
}

}  // namespace odyssey
