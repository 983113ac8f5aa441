#include "train/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace odyssey {

// Autocast state per device type: PyTorch 2.4 replaced the per-device functions (and deprecated
// the old ones) with ones taking the device type; Debian's 1.13 has only the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
namespace {
void set_autocast(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
c10::ScalarType autocast_dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void set_autocast_dtype(bool cuda, c10::ScalarType t) {
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t);
}
}  // namespace
#else
bool autocast_enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
namespace {
void set_autocast(bool cuda, bool on) {
  if (cuda) at::autocast::set_enabled(on);
  else at::autocast::set_cpu_enabled(on);
}
c10::ScalarType autocast_dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast_dtype(bool cuda, c10::ScalarType t) {
  if (cuda) at::autocast::set_autocast_gpu_dtype(t);
  else at::autocast::set_autocast_cpu_dtype(t);
}
}  // namespace
#endif

bool plain_cpu_float32(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat &&
         t.layout() == torch::kStrided && !autocast_enabled(/*cuda=*/false);
}

void check_precision(const std::string& precision, const torch::Device& device,
                     const std::string& where) {
  ODY_CHECK(precision != "fp16" || device.is_cuda(),
            where + ": train.precision = \"fp16\" needs a CUDA device (CPU autocast supports bfloat16 "
            "only)",
            "use train.precision = \"bf16\" on CPU");
}

AutocastScope::AutocastScope(const std::string& precision, const torch::Device& device) {
  if (precision == "fp32") return;
  active_ = true;
  cuda_ = device.is_cuda();
  was_enabled_ = autocast_enabled(cuda_);
  was_dtype_ = autocast_dtype(cuda_);
  // CPU autocast supports bfloat16 only (check_precision refuses fp16 there).
  set_autocast_dtype(cuda_, precision == "fp16" ? at::kHalf : at::kBFloat16);
  set_autocast(cuda_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Leaving the outermost scope drops the cached low-precision copies of the weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_, was_enabled_);
  set_autocast_dtype(cuda_, was_dtype_);
}

LossScaler::LossScaler(double init_scale, int64_t growth_interval)
    : growth_interval_(growth_interval) {
  state_.emplace_back("amp/scale", torch::full({1}, init_scale, torch::kDouble));
  state_.emplace_back("amp/clean_steps", torch::zeros({1}, torch::kDouble));
}

bool LossScaler::is_state_name(const std::string& name) {
  return name == "amp/scale" || name == "amp/clean_steps";
}

double LossScaler::scale() const { return state_[0].second.item<double>(); }

bool LossScaler::unscale_and_check(const NamedTensors& params) {
  torch::NoGradGuard no_grad;
  auto& scale = state_[0].second;
  auto& clean = state_[1].second;
  const double inv = 1.0 / scale.item<double>();
  // One multi-tensor unscale and one device-to-host read for all parameters (on a GPU a read per
  // parameter would wait for the device each time).
  std::vector<torch::Tensor> grads, finite_each;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (!grads.empty()) at::_foreach_mul_(grads, inv);
  for (const auto& g : grads) finite_each.push_back(g.isfinite().all());
  const bool finite = grads.empty() || torch::stack(finite_each).all().item<bool>();
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
