#include "train/optimizer.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <regex>

#include "common/error.h"
#include "train/sgd_kernels.h"

namespace odyssey {

namespace {

bool is_embedding_token(const std::string& name) {
  return name.find("class_token") != std::string::npos ||
         name.find("pos_embedding") != std::string::npos;
}

// Layer ids for layer-wise LR decay: 0 = stem/embeddings, 1..depth-1 = blocks, depth = head.
// Returns false when the model's names are not ones we know how to layer.
bool layer_ids(const NamedTensors& params, std::vector<int64_t>& ids, int64_t& depth) {
  static const std::regex vit_block(R"(^encoder\.layers\.encoder_layer_(\d+)\.)");
  static const std::regex stage(R"(^features\.(\d+)\.)");
  bool vit = false, effnet = false;
  int64_t max_block = -1;
  std::vector<int64_t> raw(params.size(), -1);  // block index, or -1 stem / -2 head
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& name = params[i].first;
    std::smatch m;
    if (std::regex_search(name, m, vit_block)) {
      vit = true;
      raw[i] = std::stoll(m[1]);
    } else if (std::regex_search(name, m, stage)) {
      effnet = true;
      raw[i] = std::stoll(m[1]);
    } else if (name.rfind("conv_proj.", 0) == 0 || is_embedding_token(name)) {
      vit = true;
      raw[i] = -1;
    } else if (name.rfind("heads.", 0) == 0 || name.rfind("encoder.ln.", 0) == 0 ||
               name.rfind("classifier.", 0) == 0) {
      raw[i] = -2;
    } else {
      return false;
    }
    max_block = std::max(max_block, raw[i]);
  }
  if (!vit && !effnet && !params.empty() &&
      std::all_of(raw.begin(), raw.end(), [](int64_t r) { return r == -2; })) {  // only the head trains
    depth = 0;
    ids.assign(params.size(), 0);  // the head's scale: layer_decay^0 = 1, as with the whole model
    return true;
  }
  if (vit == effnet) return false;
  // ViT: embeddings 0, block b -> b + 1, head depth. EfficientNet: stage s -> s (stage 0 is the
  // stem), head depth.
  depth = vit ? max_block + 2 : max_block + 1;
  ids.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    ids[i] = raw[i] == -2 ? depth : raw[i] == -1 ? 0 : (vit ? raw[i] + 1 : raw[i]);
  return true;
}

// The tensors of one update in lists for LibTorch's multi-tensor (_foreach_) operations: on CUDA
// a few kernels update every parameter, where one operation per parameter launched some ten
// kernels each (ViT-B/16: ~2,000 launches a step); on the CPU they run per tensor, the same
// arithmetic in the same order as the per-parameter form they replace.
using Tensors = std::vector<torch::Tensor>;
struct MultiTensor {
  Tensors params, grads, first, second;  // first/second: optimizer state slots
  std::vector<double> factors;           // a factor per parameter (a step size, a decay)
  std::vector<size_t> index;             // each entry's parameter index, where kept
  std::vector<c10::Scalar> scalars() const { return {factors.begin(), factors.end()}; }
};

// The parameters with a gradient, their indices and gradients, and `slots` state tensors each
// (slot j of parameter i at state[slots * i + j]: SGD's momentum buffer, Adam's m and v), in lists;
// factors left to the caller.
MultiTensor with_gradients(const NamedTensors& params, const NamedTensors& state, size_t slots) {
  MultiTensor t;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i].second;
    if (!p.grad().defined()) continue;
    t.params.push_back(p), t.grads.push_back(p.grad()), t.index.push_back(i);
    if (slots >= 1) t.first.push_back(state[slots * i].second);
    if (slots >= 2) t.second.push_back(state[slots * i + 1].second);
  }
  return t;
}

// p_i += rate_i * d_i: one multi-tensor call per distinct rate (one in all without layer decay),
// LibTorch's add with alpha as in p.add_(d, rate).
void add_scaled(const Tensors& params, const Tensors& d, const std::vector<double>& rates) {
  std::vector<bool> done(params.size(), false);
  for (size_t i = 0; i < params.size(); ++i) {
    if (done[i]) continue;
    Tensors ps{params[i]}, ds{d[i]};  // i itself even if its rate is NaN
    for (size_t j = i + 1; j < params.size(); ++j)
      if (!done[j] && rates[j] == rates[i]) ps.push_back(params[j]), ds.push_back(d[j]), done[j] = true;
    at::_foreach_add_(ps, ds, rates[i]);
  }
}

// Whether a is a dense CPU float32 tensor with p's shape and element order in memory (the strides
// of dimensions of size 1 do not matter, as in LibTorch's gradient layout contract): then both
// are n floats from data_ptr in the same order.
bool same_dense_cpu_float32(const torch::Tensor& a, const torch::Tensor& p) {
  if (!a.device().is_cpu() || a.scalar_type() != torch::kFloat || a.sizes() != p.sizes() ||
      !a.is_non_overlapping_and_dense())
    return false;
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) != 1 && a.stride(d) != p.stride(d)) return false;
  return true;
}

// Entry k of t (its parameter, gradient and state tensors) laid out alike: dense CPU float32.
bool dense_cpu_float32(const MultiTensor& t, size_t k) {
  const auto& p = t.params[k];
  return same_dense_cpu_float32(p, p) && same_dense_cpu_float32(t.grads[k], p) &&
         (t.first.empty() || same_dense_cpu_float32(t.first[k], p)) &&
         (t.second.empty() || same_dense_cpu_float32(t.second[k], p));
}

// t without the entries keep(k) refuses.
template <class F>
MultiTensor filtered(const MultiTensor& t, F keep) {
  MultiTensor out;
  for (size_t k = 0; k < t.params.size(); ++k) {
    if (!keep(k)) continue;
    out.params.push_back(t.params[k]), out.grads.push_back(t.grads[k]), out.index.push_back(t.index[k]);
    if (!t.first.empty()) out.first.push_back(t.first[k]);
    if (!t.second.empty()) out.second.push_back(t.second[k]);
  }
  return out;
}

// Heavy-ball momentum as PyTorch's SGD, per parameter: buf = momentum*buf + g; the step direction
// is buf, or g + momentum*buf with Nesterov (new tensors: g stays as it is).
Tensors with_momentum(const OptimConfig& cfg, const Tensors& bufs, const Tensors& grads) {
  at::_foreach_mul_(bufs, cfg.momentum);
  at::_foreach_add_(bufs, grads);
  return cfg.nesterov ? at::_foreach_add(grads, bufs, cfg.momentum) : bufs;
}

// Adam's moment estimates: exp_avg and exp_avg_sq per parameter plus a step count; the bias
// corrections of the current step.
class AdamMoments : public Optimizer {
 public:
  AdamMoments(const OptimConfig& cfg, NamedTensors params, std::vector<ParamSettings> settings)
      : Optimizer(std::move(params), std::move(settings)), cfg_(cfg) {
    state_.reserve(2 * params_.size() + 1);
    for (auto& [name, p] : params_) {
      add_state(name, "exp_avg", p);
      add_state(name, "exp_avg_sq", p);
    }
    add_count();
  }

 protected:
  // Advances the step count; returns the bias corrections (1 - beta1^t, 1 - beta2^t).
  std::pair<double, double> next_corrections() {
    const double t = next_count();
    return {1 - std::pow(cfg_.beta1, t), 1 - std::pow(cfg_.beta2, t)};
  }
  // The parameters with a gradient and their moments (first: m, second: v).
  MultiTensor with_gradients() const { return odyssey::with_gradients(params_, state_, 2); }
  // Updates the moments m and v with the gradients.
  void update_moments(const MultiTensor& t) {
    if (t.params.empty()) return;
    at::_foreach_mul_(t.first, cfg_.beta1);
    at::_foreach_add_(t.first, t.grads, 1 - cfg_.beta1);
    at::_foreach_mul_(t.second, cfg_.beta2);
    at::_foreach_addcmul_(t.second, t.grads, t.grads, 1 - cfg_.beta2);
  }
  OptimConfig cfg_;
};

// PyTorch's SGD: g += wd*p; buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf.
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimConfig& cfg, NamedTensors params, std::vector<ParamSettings> settings)
      : Optimizer(std::move(params), std::move(settings)), cfg_(cfg) {
    state_.reserve(params_.size());
    if (cfg_.momentum > 0)
      for (auto& [name, p] : params_) add_state(name, "momentum_buffer", p);
  }
  void step(double base_lr) override {
    torch::NoGradGuard no_grad;
    const MultiTensor all = with_gradients(params_, state_, cfg_.momentum > 0 ? 1 : 0);
    // Dense CPU float32 entries in one pass each; the rest (CUDA, other types) as multi-tensor
    // operations.
    std::vector<bool> fused(all.params.size());
    for (size_t k = 0; k < all.params.size(); ++k)
      if ((fused[k] = dense_cpu_float32(all, k))) fused_update(all, k, base_lr);
    MultiTensor t = filtered(all, [&](size_t k) { return !fused[k]; }), decayed;
    if (t.params.empty()) return;
    std::vector<size_t> decayed_at;
    for (size_t k = 0; k < t.params.size(); ++k) {
      const auto& s = settings_[t.index[k]];
      if (cfg_.weight_decay > 0 && s.decay)
        decayed_at.push_back(k), decayed.params.push_back(t.params[k]), decayed.grads.push_back(t.grads[k]);
      t.factors.push_back(-base_lr * s.lr_scale);
    }
    if (!decayed.params.empty()) {  // g + wd * p, new tensors (the gradients stay as they are)
      auto with_decay = at::_foreach_add(decayed.grads, decayed.params, cfg_.weight_decay);
      for (size_t k = 0; k < decayed_at.size(); ++k) t.grads[decayed_at[k]] = with_decay[k];
    }
    add_scaled(t.params, cfg_.momentum > 0 ? with_momentum(cfg_, t.first, t.grads) : t.grads, t.factors);
  }

 private:
  // Entry k of t in one pass (train/sgd_kernels.h), the same bits as the passes above.
  void fused_update(const MultiTensor& t, size_t k, double base_lr) {
    const auto& s = settings_[t.index[k]];
    const SgdFactors f{static_cast<float>(cfg_.weight_decay > 0 && s.decay ? cfg_.weight_decay : 0.0),
                       static_cast<float>(cfg_.momentum), cfg_.nesterov,
                       static_cast<float>(-base_lr * s.lr_scale)};
    float* p = t.params[k].data_ptr<float>();
    const float* g = t.grads[k].data_ptr<float>();
    float* buf = t.first.empty() ? nullptr : t.first[k].data_ptr<float>();
    at::parallel_for(0, t.params[k].numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      sgd_update(p + begin, g + begin, buf ? buf + begin : nullptr, end - begin, f);
    });
  }

  OptimConfig cfg_;
};

// AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments.
class AdamW final : public AdamMoments {
 public:
  using AdamMoments::AdamMoments;
  void step(double base_lr) override {
    torch::NoGradGuard no_grad;
    const auto [bc1, bc2] = next_corrections();
    MultiTensor t = with_gradients(), decayed;
    if (t.params.empty()) return;
    for (size_t k = 0; k < t.params.size(); ++k) {
      const auto& s = settings_[t.index[k]];
      const double lr = base_lr * s.lr_scale;
      if (cfg_.weight_decay > 0 && s.decay)
        decayed.params.push_back(t.params[k]), decayed.factors.push_back(1 - lr * cfg_.weight_decay);
      t.factors.push_back(-lr / bc1);
    }
    if (!decayed.params.empty()) at::_foreach_mul_(decayed.params, decayed.scalars());
    update_moments(t);
    auto denom = at::_foreach_sqrt(t.second);
    at::_foreach_div_(denom, std::sqrt(bc2));
    at::_foreach_add_(denom, cfg_.eps);
    at::_foreach_addcdiv_(t.params, t.first, denom, t.scalars());
  }
};

// RMSprop in TensorFlow's form, as EfficientNet was trained (timm's RMSpropTF): the mean square
// starts at 1, epsilon inside the square root, the learning rate inside the momentum buffer,
// L2 weight decay added to the gradient.
class RmspropTf final : public Optimizer {
 public:
  RmspropTf(const OptimConfig& cfg, NamedTensors params, std::vector<ParamSettings> settings)
      : Optimizer(std::move(params), std::move(settings)), cfg_(cfg) {
    state_.reserve(2 * params_.size());
    for (auto& [name, p] : params_) add_state(name, "square_avg", p, 1.0);
    if (cfg_.momentum > 0)
      for (auto& [name, p] : params_) add_state(name, "momentum_buffer", p);
  }
  void step(double base_lr) override {
    torch::NoGradGuard no_grad;
    const size_t n = params_.size();
    for (size_t i = 0; i < n; ++i) {
      auto& p = params_[i].second;
      if (!p.grad().defined()) continue;
      const double lr = base_lr * settings_[i].lr_scale;
      auto g = p.grad();
      if (cfg_.weight_decay > 0 && settings_[i].decay) g = g.add(p, cfg_.weight_decay);
      auto& sq = state_[i].second;
      sq.mul_(cfg_.rho).addcmul_(g, g, 1 - cfg_.rho);
      auto avg = sq.add(cfg_.eps).sqrt_();
      if (cfg_.momentum > 0) {
        auto& buf = state_[n + i].second;
        buf.mul_(cfg_.momentum).addcdiv_(g, avg, lr);
        p.sub_(buf);
      } else {
        p.addcdiv_(g, avg, -lr);
      }
    }
  }

 private:
  OptimConfig cfg_;
};

// A layer-wise trust ratio: `ratio` where the weight norm w and `other` (the update's or the
// gradient's norm) are both positive, else 1. 0-dim tensors on the parameter's device: the update
// never waits for a norm to reach the host (on a GPU that was one wait per parameter and step).
torch::Tensor trust_ratio(const torch::Tensor& w, const torch::Tensor& other,
                          const torch::Tensor& ratio) {
  return torch::where(w.gt(0).logical_and(other.gt(0)), ratio, torch::ones_like(ratio));
}

// LAMB (You et al. 2019): the Adam direction plus decoupled decay, scaled per tensor by the
// trust ratio |w| / |update| for the tensors that decay (biases and norms take plain Adam steps).
class Lamb final : public AdamMoments {
 public:
  using AdamMoments::AdamMoments;
  void step(double base_lr) override {
    torch::NoGradGuard no_grad;
    const auto [bc1, bc2] = next_corrections();
    const MultiTensor t = with_gradients();
    update_moments(t);
    for (size_t k = 0; k < t.params.size(); ++k) {
      const size_t i = t.index[k];
      auto& p = params_[i].second;
      const double lr = base_lr * settings_[i].lr_scale;
      const auto &m = t.first[k], &v = t.second[k];
      auto update = (m / bc1).div_(v.div(bc2).sqrt_().add_(cfg_.eps));
      if (settings_[i].decay) {
        if (cfg_.weight_decay > 0) update.add_(p, cfg_.weight_decay);
        const auto w = p.norm(), u = update.norm();
        update.mul_(trust_ratio(w, u, w / u));
      }
      p.add_(update, -lr);
    }
  }
};

// LARS (You et al. 2017, as in timm): for decaying tensors g = trust x (g + wd x p) with
// trust = eta |w| / (|g| + wd |w|), then SGD momentum (optionally Nesterov).
class Lars final : public Optimizer {
 public:
  Lars(const OptimConfig& cfg, NamedTensors params, std::vector<ParamSettings> settings)
      : Optimizer(std::move(params), std::move(settings)), cfg_(cfg) {
    state_.reserve(params_.size());
    if (cfg_.momentum > 0)
      for (auto& [name, p] : params_) add_state(name, "momentum_buffer", p);
  }
  void step(double base_lr) override {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i].second;
      if (!p.grad().defined()) continue;
      const double lr = base_lr * settings_[i].lr_scale;
      auto g = p.grad();
      if (settings_[i].decay) {
        const auto w = p.norm(), gn = g.norm();
        const auto ratio = w * cfg_.trust_coef / (gn + w * cfg_.weight_decay + 1e-12);
        const auto trust = trust_ratio(w, gn, ratio);
        g = g.add(p, cfg_.weight_decay).mul_(trust);
      }
      if (cfg_.momentum > 0) g = with_momentum(cfg_, {state_[i].second}, {g})[0];
      p.add_(g, -lr);
    }
  }

 private:
  OptimConfig cfg_;
};

}  // namespace

std::vector<ParamSettings> param_settings(const OptimConfig& cfg, const NamedTensors& params) {
  std::vector<ParamSettings> out(params.size());
  for (size_t i = 0; i < params.size(); ++i)
    out[i].decay = cfg.decay_bias_and_norm ||
                   (params[i].second.dim() >= 2 && !is_embedding_token(params[i].first));
  if (cfg.layer_decay < 1.0) {
    std::vector<int64_t> ids;
    int64_t depth = 0;
    ODY_CHECK(layer_ids(params, ids, depth),
              ODY_MSG("optim.layer_decay = " << cfg.layer_decay
                                             << " needs a ViT or EfficientNet model (parameter "
                                                "names encoder.layers.* or features.*)"),
              "set optim.layer_decay = 1.0 for this model");
    for (size_t i = 0; i < params.size(); ++i)
      out[i].lr_scale = std::pow(cfg.layer_decay, static_cast<double>(depth - ids[i]));
  }
  return out;
}

Optimizer::Optimizer(NamedTensors params, std::vector<ParamSettings> settings)
    : params_(std::move(params)), settings_(std::move(settings)) {
  ODY_CHECK(settings_.size() == params_.size(), "optimizer: one setting per parameter expected",
            "");
}

void Optimizer::zero_grad() {
  std::vector<torch::Tensor> grads;
  for (auto& [name, p] : params_)
    if (p.grad().defined()) grads.push_back(p.mutable_grad());
  if (!grads.empty()) at::_foreach_zero_(grads);
}

torch::Tensor& Optimizer::add_state(const std::string& param, const std::string& slot,
                                    const torch::Tensor& like, double fill) {
  state_.emplace_back(param + "/" + slot, torch::full_like(like, fill));
  return state_.back().second;
}

void Optimizer::add_count() {
  count_ = torch::zeros({1}, torch::kDouble);
  state_.emplace_back("step", count_);
}

double Optimizer::next_count() {
  count_.add_(1);
  return count_.item<double>();
}

std::unique_ptr<Optimizer> make_optimizer(const OptimConfig& cfg, NamedTensors params) {
  auto settings = param_settings(cfg, params);
  std::unique_ptr<Optimizer> opt;
  if (cfg.name == "adamw") opt = std::make_unique<AdamW>(cfg, std::move(params), std::move(settings));
  else if (cfg.name == "rmsprop") opt = std::make_unique<RmspropTf>(cfg, std::move(params), std::move(settings));
  else if (cfg.name == "lamb") opt = std::make_unique<Lamb>(cfg, std::move(params), std::move(settings));
  else if (cfg.name == "lars") opt = std::make_unique<Lars>(cfg, std::move(params), std::move(settings));
  else opt = std::make_unique<Sgd>(cfg, std::move(params), std::move(settings));
  return opt;
}

torch::Tensor grad_norm(const NamedTensors& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> sums;  // per parameter, on its device: summed there, not read
  for (const auto& [name, p] : params)
    if (p.grad().defined()) sums.push_back(p.grad().pow(2).sum().to(torch::kDouble));
  if (sums.empty()) return torch::zeros({}, torch::kDouble);
  return torch::stack(sums).sum().sqrt();
}

torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm) {
  torch::NoGradGuard no_grad;
  const auto norm = grad_norm(params);
  // Computed where the gradients are: on a GPU the host does not wait for the norm. A
  // non-finite norm leaves the gradients as they are (max / inf would zero them and hide the
  // fault; the trainer skips such steps before clipping and reports their norm).
  const auto clip = norm.isfinite().logical_and(norm > max_norm);
  const auto factor = torch::where(clip, max_norm / (norm + 1e-6), torch::ones_like(norm));
  // On the CPU reading the verdict costs nothing and saves a pass over every gradient when no
  // clipping is needed; on a GPU every gradient is multiplied (by exactly 1 when not clipping),
  // as PyTorch's clip_grad_norm_ does.
  if (norm.device().is_cpu() && !clip.item<bool>()) return norm;
  std::vector<torch::Tensor> grads;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return norm;
  const auto f = factor.to(grads.front().scalar_type());  // rounded as a scalar factor would be
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  at::_foreach_mul_(grads, f);  // a few kernels for all gradients on a GPU, not one each
#else
  for (auto& g : grads) g.mul_(f);
#endif
  return norm;
}

double scaled_lr(const OptimConfig& cfg, int64_t global_batch) {
  return cfg.lr_scaling == "linear" ? cfg.lr * static_cast<double>(global_batch) / 256.0 : cfg.lr;
}

double lr_at(const ScheduleConfig& cfg, double peak, int64_t step, int64_t warmup_steps,
             int64_t total_steps, int64_t steps_per_epoch) {
  if (step < warmup_steps) {
    const double from = cfg.warmup_start * peak;
    return from + (peak - from) * static_cast<double>(step + 1) / warmup_steps;
  }
  const double floor = cfg.min_lr_ratio * peak;
  const double epochs = static_cast<double>(step) / std::max<int64_t>(1, steps_per_epoch);
  if (cfg.name == "constant") return peak;
  if (cfg.name == "step")
    return std::max(floor, peak * std::pow(cfg.decay_rate, std::floor(epochs / cfg.decay_epochs)));
  if (cfg.name == "exponential")
    return std::max(floor, peak * std::pow(cfg.decay_rate, epochs / cfg.decay_epochs));
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, (step - warmup_steps) / span);
  return floor + (peak - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace odyssey
