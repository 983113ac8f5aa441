#include "train/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace odyssey {

void check_precision(const std::string& precision, const torch::Device& device) {
  ODY_CHECK(precision != "fp16" || device.is_cuda(),
            "train.precision = \"fp16\" needs a CUDA device (CPU autocast supports bfloat16 "
            "only)",
            "use train.precision = \"bf16\" on CPU");
}

AutocastScope::AutocastScope(const std::string& precision, const torch::Device& device) {
  if (precision == "fp32") return;
  if (device.is_cuda()) {
    cuda_ = true;
    was_enabled_ = at::autocast::is_enabled();
    was_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(precision == "fp16" ? at::kHalf : at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    cpu_ = true;
    was_enabled_ = at::autocast::is_cpu_enabled();
    was_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!cpu_ && !cuda_) return;
  // Leaving the outermost scope drops the cached low-precision copies of the weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
}

LossScaler::LossScaler(double init_scale, int64_t growth_interval)
    : growth_interval_(growth_interval) {
  state_.emplace_back("amp/scale", torch::full({1}, init_scale, torch::kDouble));
  state_.emplace_back("amp/clean_steps", torch::zeros({1}, torch::kDouble));
}

double LossScaler::scale() const { return state_[0].second.item<double>(); }

bool LossScaler::unscale_and_check(const NamedTensors& params) {
  torch::NoGradGuard no_grad;
  auto& scale = state_[0].second;
  auto& clean = state_[1].second;
  const double inv = 1.0 / scale.item<double>();
  bool finite = true;
  for (const auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    p.grad().mul_(inv);
    finite = finite && p.grad().isfinite().all().item<bool>();
  }
  if (!finite) {
    scale.mul_(0.5);
    clean.zero_();
    return false;
  }
  clean.add_(1);
  if (clean.item<double>() >= growth_interval_) {
    scale.mul_(2);
    clean.zero_();
  }
  return true;
}

}  // namespace odyssey
