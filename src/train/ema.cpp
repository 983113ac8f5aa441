#include "train/ema.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace odyssey {

Ema::Ema(NamedTensors params, NamedTensors buffers, double decay, bool warmup)
    : live_(std::move(params)), param_count_(live_.size()), decay_(decay), warmup_(warmup) {
  for (auto& b : buffers)
    if (b.second.is_floating_point()) live_.push_back(std::move(b));
  for (auto& [name, t] : live_) {
    avg_.emplace_back(name, t.detach().clone());
    spare_.push_back(torch::empty_like(t));
  }
}

void Ema::reset() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) avg_[i].second.copy_(live_[i].second);
}

void Ema::reset_buffers() {
  torch::NoGradGuard no_grad;
  for (size_t i = param_count_; i < live_.size(); ++i) avg_[i].second.copy_(live_[i].second);
}

std::vector<torch::Tensor> Ema::buffers() const {
  std::vector<torch::Tensor> out;
  for (size_t i = param_count_; i < avg_.size(); ++i) out.push_back(avg_[i].second);
  return out;
}

double Ema::decay_at(int64_t t) const {
  return warmup_ ? std::min(decay_, (1.0 + t) / (10.0 + t)) : decay_;
}

void Ema::update(int64_t t) {
  torch::NoGradGuard no_grad;
  const double d = decay_at(t);
  // avg = d * avg + (1 - d) * live, as multi-tensor operations (a few kernels on CUDA for every
  // tensor; per tensor on the CPU, the same arithmetic).
  std::vector<torch::Tensor> avg, now;
  for (size_t i = 0; i < live_.size(); ++i)
    avg.push_back(avg_[i].second), now.push_back(live_[i].second.detach());
  if (avg.empty()) return;
  at::_foreach_mul_(avg, d);
  at::_foreach_add_(avg, now, 1 - d);
}

void Ema::swap() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < live_.size(); ++i) {
    auto& t = live_[i].second;
    spare_[i].copy_(t);
    t.copy_(avg_[i].second);
    avg_[i].second.copy_(spare_[i]);
  }
}

}  // namespace odyssey
