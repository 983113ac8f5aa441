#include "train/ema.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace odyssey {

Ema::Ema(NamedTensors params, double decay, bool warmup)
    : params_(std::move(params)), decay_(decay), warmup_(warmup) {
  for (auto& [name, p] : params_) {
    avg_.emplace_back(name, p.detach().clone());
    spare_.push_back(torch::empty_like(p));
  }
}

void Ema::reset() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) avg_[i].second.copy_(params_[i].second);
}

double Ema::decay_at(int64_t t) const {
  return warmup_ ? std::min(decay_, (1.0 + t) / (10.0 + t)) : decay_;
}

void Ema::update(int64_t t) {
  torch::NoGradGuard no_grad;
  const double d = decay_at(t);
  // avg = d * avg + (1 - d) * p, as multi-tensor operations (a few kernels on CUDA for every
  // parameter; per tensor on the CPU, the same arithmetic).
  std::vector<torch::Tensor> avg, now;
  for (size_t i = 0; i < params_.size(); ++i)
    avg.push_back(avg_[i].second), now.push_back(params_[i].second.detach());
  if (avg.empty()) return;
  at::_foreach_mul_(avg, d);
  at::_foreach_add_(avg, now, 1 - d);
}

void Ema::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    spare_[i].copy_(p);
    p.copy_(avg_[i].second);
    avg_[i].second.copy_(spare_[i]);
  }
}

}  // namespace odyssey
