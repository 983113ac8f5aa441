// Optimizers against LibTorch's own implementations, step by step; the LR schedule by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/optimizer.h"

using namespace odyssey;

namespace {

// Runs `steps` updates with the same gradients through ours and the reference.
void compare(const OptimConfig& cfg, torch::optim::Optimizer& ref, torch::Tensor ours_w,
             torch::Tensor ref_w, int steps) {
  auto ours = make_optimizer(cfg, {{"w", ours_w}});
  torch::manual_seed(5);
  for (int i = 0; i < steps; ++i) {
    auto g = torch::randn(ours_w.sizes());
    ours_w.mutable_grad() = g.clone();
    ref_w.mutable_grad() = g.clone();
    ours->step(cfg.lr);
    ref.step();
    ASSERT_TRUE(torch::allclose(ours_w, ref_w, /*rtol=*/1e-6, /*atol=*/1e-7)) << "step " << i;
  }
}

}  // namespace

TEST(Optimizer, SgdNesterovMatchesLibTorch) {
  OptimConfig cfg;
  cfg.lr = 0.05, cfg.momentum = 0.9, cfg.nesterov = true, cfg.weight_decay = 1e-3;
  auto w0 = torch::randn({6, 5});
  auto a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  torch::optim::SGD ref({b}, torch::optim::SGDOptions(cfg.lr).momentum(0.9).nesterov(true).weight_decay(1e-3));
  compare(cfg, ref, a, b, 8);
}

TEST(Optimizer, SgdPlainMomentumMatchesLibTorch) {
  OptimConfig cfg;
  cfg.lr = 0.1, cfg.momentum = 0.5, cfg.nesterov = false, cfg.weight_decay = 0;
  auto w0 = torch::randn({3, 4});
  auto a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  torch::optim::SGD ref({b}, torch::optim::SGDOptions(cfg.lr).momentum(0.5));
  compare(cfg, ref, a, b, 8);
}

TEST(Optimizer, AdamWMatchesLibTorch) {
  OptimConfig cfg;
  cfg.name = "adamw", cfg.lr = 0.01, cfg.weight_decay = 0.05, cfg.beta1 = 0.8, cfg.beta2 = 0.99,
  cfg.eps = 1e-6;
  auto w0 = torch::randn({4, 7});
  auto a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  torch::optim::AdamW ref({b}, torch::optim::AdamWOptions(cfg.lr).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.05));
  compare(cfg, ref, a, b, 8);
}

TEST(Optimizer, NoWeightDecayOnBiasesAndNormParameters) {
  OptimConfig cfg;
  cfg.weight_decay = 0.5, cfg.momentum = 0;
  auto bias = torch::ones({4}).requires_grad_();
  auto weight = torch::ones({2, 2}).requires_grad_();
  auto opt = make_optimizer(cfg, {{"bias", bias}, {"weight", weight}});
  bias.mutable_grad() = torch::zeros({4});
  weight.mutable_grad() = torch::zeros({2, 2});
  opt->step(0.1);
  EXPECT_TRUE(torch::equal(bias, torch::ones({4})));
  EXPECT_TRUE(torch::allclose(weight, torch::full({2, 2}, 1 - 0.1 * 0.5)));
}

TEST(Schedule, WarmupThenCosine) {
  ScheduleConfig s;
  s.name = "cosine";
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 0, 4, 104), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 3, 4, 104), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 4, 4, 104), 1.0);
  EXPECT_NEAR(lr_at(s, 1.0, 54, 4, 104), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(s, 1.0, 104, 4, 104), 0.0, 1e-12);
  s.min_lr_ratio = 0.1;
  EXPECT_NEAR(lr_at(s, 2.0, 104, 4, 104), 0.2, 1e-12);
  s.name = "constant";
  EXPECT_DOUBLE_EQ(lr_at(s, 2.0, 50, 4, 104), 2.0);
}

TEST(Schedule, LinearScalingRule) {
  OptimConfig o;
  o.lr = 0.1;
  EXPECT_DOUBLE_EQ(scaled_lr(o, 512), 0.2);
  o.lr_scaling = "none";
  EXPECT_DOUBLE_EQ(scaled_lr(o, 512), 0.1);
}
