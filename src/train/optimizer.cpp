#include "train/optimizer.h"

#include <torch/torch.h>

#include <cmath>

namespace odyssey {

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

torch::Tensor& Optimizer::add_state(const std::string& param, const std::string& slot,
                                    const torch::Tensor& like) {
  state_.emplace_back(param + "/" + slot, torch::zeros_like(like));
  return state_.back().second;
}

namespace {

bool decays(const torch::Tensor& p) { return p.dim() >= 2; }

// PyTorch's SGD: g += wd*p; buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf.
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimConfig& cfg, NamedTensors params) : Optimizer(std::move(params)), cfg_(cfg) {
    state_.reserve(params_.size());
    if (cfg_.momentum > 0)
      for (auto& [name, p] : params_) add_state(name, "momentum_buffer", p);
  }
  void step(double lr) override {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i].second;
      if (!p.grad().defined()) continue;
      auto g = p.grad();
      if (cfg_.weight_decay > 0 && decays(p)) g = g.add(p, cfg_.weight_decay);
      if (cfg_.momentum > 0) {
        auto& buf = state_[i].second;
        buf.mul_(cfg_.momentum).add_(g);
        g = cfg_.nesterov ? g.add(buf, cfg_.momentum) : buf;
      }
      p.add_(g, -lr);
    }
  }

 private:
  OptimConfig cfg_;
};

// AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments.
class AdamW final : public Optimizer {
 public:
  AdamW(const OptimConfig& cfg, NamedTensors params) : Optimizer(std::move(params)), cfg_(cfg) {
    state_.reserve(2 * params_.size() + 1);
    for (auto& [name, p] : params_) {
      add_state(name, "exp_avg", p);
      add_state(name, "exp_avg_sq", p);
    }
    state_.emplace_back("step", torch::zeros({1}, torch::kDouble));
  }
  void step(double lr) override {
    torch::NoGradGuard no_grad;
    auto& count = state_.back().second;
    count.add_(1);
    const double t = count.item<double>();
    const double bc1 = 1 - std::pow(cfg_.beta1, t), bc2 = 1 - std::pow(cfg_.beta2, t);
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i].second;
      if (!p.grad().defined()) continue;
      auto& m = state_[2 * i].second;
      auto& v = state_[2 * i + 1].second;
      const auto& g = p.grad();
      if (cfg_.weight_decay > 0 && decays(p)) p.mul_(1 - lr * cfg_.weight_decay);
      m.mul_(cfg_.beta1).add_(g, 1 - cfg_.beta1);
      v.mul_(cfg_.beta2).addcmul_(g, g, 1 - cfg_.beta2);
      auto denom = v.sqrt().div_(std::sqrt(bc2)).add_(cfg_.eps);
      p.addcdiv_(m, denom, -lr / bc1);
    }
  }

 private:
  OptimConfig cfg_;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, NamedTensors params) {
  if (cfg.name == "adamw") return std::make_unique<AdamW>(cfg, std::move(params));
  return std::make_unique<Sgd>(cfg, std::move(params));
}

double scaled_lr(const OptimConfig& cfg, int64_t global_batch) {
  return cfg.lr_scaling == "linear" ? cfg.lr * static_cast<double>(global_batch) / 256.0 : cfg.lr;
}

double lr_at(const ScheduleConfig& cfg, double peak, int64_t step, int64_t warmup_steps,
             int64_t total_steps) {
  if (step < warmup_steps) return peak * static_cast<double>(step + 1) / warmup_steps;
  if (cfg.name == "constant") return peak;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, (step - warmup_steps) / span);
  const double floor = cfg.min_lr_ratio * peak;
  return floor + (peak - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace odyssey
