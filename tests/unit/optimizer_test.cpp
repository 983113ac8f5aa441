// Optimizers against LibTorch's own implementations, step by step; the LR schedule by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

namespace {

// Several parameters with mixed settings (decayed weights, undecayed biases, two layer-decay
// rates, one parameter without a gradient): the multi-tensor update must give the bits of the
// per-parameter formulas, leave the gradients as they were and skip the parameter without one.
void expect_per_parameter_bits(OptimConfig cfg) {
  cfg.layer_decay = 0.5;
  const std::vector<std::string> names = {"features.0.0.weight", "features.0.1.bias", "features.1.0.weight",
                                          "classifier.1.weight", "classifier.1.bias"};
  const std::vector<std::vector<int64_t>> shapes = {{4, 3, 3, 3}, {4}, {8, 4, 1, 1}, {5, 8}, {5}};
  const std::vector<double> scale = {0.25, 0.25, 0.5, 1.0, 1.0};  // 0.5^(depth - layer), depth 2
  const std::vector<bool> decayed = {true, false, true, true, false};
  torch::manual_seed(3);
  NamedTensors params;
  std::vector<torch::Tensor> ref, m, v;
  for (size_t i = 0; i < names.size(); ++i) {
    auto w = torch::randn(shapes[i]);
    params.emplace_back(names[i], w.clone().requires_grad_());
    ref.push_back(w.clone()), m.push_back(torch::zeros_like(w)), v.push_back(torch::zeros_like(w));
  }
  auto opt = make_optimizer(cfg, params);
  const double lr = 0.3;
  for (int step = 1; step <= 4; ++step) {
    std::vector<torch::Tensor> grads;
    for (size_t i = 0; i < names.size(); ++i) {
      grads.push_back(torch::randn(shapes[i]));
      params[i].second.mutable_grad() = i == 2 ? torch::Tensor() : grads[i].clone();
    }
    opt->step(lr);
    for (size_t i = 0; i < names.size(); ++i) {
      if (i == 2) continue;  // no gradient: unchanged
      const double r = lr * scale[i];
      auto g = grads[i];
      if (cfg.name == "adamw") {
        const double bc1 = 1 - std::pow(cfg.beta1, step), bc2 = 1 - std::pow(cfg.beta2, step);
        if (decayed[i]) ref[i].mul_(1 - r * cfg.weight_decay);
        m[i].mul_(cfg.beta1).add_(g, 1 - cfg.beta1);
        v[i].mul_(cfg.beta2).addcmul_(g, g, 1 - cfg.beta2);
        ref[i].addcdiv_(m[i], v[i].sqrt().div_(std::sqrt(bc2)).add_(cfg.eps), -r / bc1);
      } else {
        if (decayed[i]) g = g.add(ref[i], cfg.weight_decay);
        m[i].mul_(cfg.momentum).add_(g);
        ref[i].add_(cfg.nesterov ? g.add(m[i], cfg.momentum) : m[i], -r);
      }
      EXPECT_TRUE(torch::equal(params[i].second.detach(), ref[i])) << names[i] << " step " << step;
      EXPECT_TRUE(torch::equal(params[i].second.grad(), grads[i])) << names[i] << ": gradient changed";
    }
  }
}

}  // namespace

TEST(Optimizer, MultiTensorSgdGivesThePerParameterBits) {
  OptimConfig cfg;
  cfg.momentum = 0.9, cfg.nesterov = true, cfg.weight_decay = 0.01;
  expect_per_parameter_bits(cfg);
  cfg.nesterov = false;
  expect_per_parameter_bits(cfg);
  cfg.weight_decay = 0;
  expect_per_parameter_bits(cfg);
  cfg.momentum = 0;  // the step is the gradient itself
  expect_per_parameter_bits(cfg);
}

// The CPU's one-pass SGD update (train/sgd_kernels.h) gives the bits of LibTorch's operations
// for large parameters split across threads, channels-last parameters, and falls back to the
// multi-tensor form for a gradient laid out unlike its parameter.
TEST(Optimizer, OnePassSgdGivesLibTorchsBitsAtAnySizeAndLayout) {
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  torch::manual_seed(7);
  const std::vector<torch::Tensor> init = {torch::randn({257, 1031}),  // 265k values: split in chunks
                                           torch::randn({8, 16, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast),
                                           torch::randn({33})};
  for (const bool nesterov : {true, false}) {
    for (const double momentum : {0.9, 0.0}) {
      OptimConfig cfg;
      cfg.momentum = momentum, cfg.nesterov = nesterov && momentum > 0, cfg.weight_decay = 1e-3;
      NamedTensors params;
      std::vector<torch::Tensor> ref, buf;
      for (size_t i = 0; i < init.size(); ++i) {
        params.emplace_back("w" + std::to_string(i), init[i].clone().requires_grad_());
        ref.push_back(init[i].clone()), buf.push_back(torch::zeros_like(init[i]));
      }
      auto opt = make_optimizer(cfg, params);
      for (int step = 0; step < 3; ++step) {
        std::vector<torch::Tensor> grads;
        for (size_t i = 0; i < init.size(); ++i) {
          grads.push_back(torch::randn(init[i].sizes()).contiguous(init[i].suggest_memory_format()));
          params[i].second.mutable_grad() = grads[i].clone();
          if (i == 2 && step == 2)  // a strided (not dense) gradient on the last step: the fallback
            params[i].second.mutable_grad() = torch::empty({66}).slice(0, 0, 66, 2).copy_(grads[i]);
        }
        opt->step(0.7);
        for (size_t i = 0; i < init.size(); ++i) {
          // (1-D parameters are not decayed)
          auto g = init[i].dim() >= 2 ? grads[i].add(ref[i], cfg.weight_decay) : grads[i];
          if (momentum > 0) {
            buf[i].mul_(momentum).add_(g);
            g = cfg.nesterov ? g.add(buf[i], momentum) : buf[i];
          }
          ref[i].add_(g, -0.7);
          EXPECT_TRUE(torch::equal(params[i].second.detach(), ref[i]))
              << "parameter " << i << " step " << step << " momentum " << momentum << " nesterov " << nesterov;
          EXPECT_EQ(params[i].second.strides(), init[i].strides());
        }
      }
    }
  }
  at::set_num_threads(threads);
}

TEST(Optimizer, MultiTensorAdamWGivesThePerParameterBits) {
  OptimConfig cfg;
  cfg.name = "adamw", cfg.weight_decay = 0.05, cfg.beta1 = 0.8, cfg.beta2 = 0.99, cfg.eps = 1e-6;
  expect_per_parameter_bits(cfg);
  cfg.weight_decay = 0;
  expect_per_parameter_bits(cfg);
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

namespace {

// Applies one optimizer to a weight and a bias with fixed gradients for `steps` steps.
struct Pair {
  torch::Tensor w = torch::tensor({{0.5, -1.0}, {2.0, 0.25}}, torch::kDouble).requires_grad_();
  torch::Tensor b = torch::tensor({0.1, -0.2}, torch::kDouble).requires_grad_();
  torch::Tensor gw = torch::tensor({{0.1, 0.2}, {-0.3, 0.4}}, torch::kDouble);
  torch::Tensor gb = torch::tensor({0.05, -0.05}, torch::kDouble);
  void run(const OptimConfig& cfg, double lr, int steps) {
    auto opt = make_optimizer(cfg, {{"weight", w}, {"bias", b}});
    for (int i = 0; i < steps; ++i) {
      w.mutable_grad() = gw.clone();
      b.mutable_grad() = gb.clone();
      opt->step(lr);
    }
  }
};

}  // namespace

TEST(Optimizer, RmspropTensorFlowFormByHand) {
  OptimConfig cfg;
  cfg.name = "rmsprop", cfg.momentum = 0.9, cfg.rho = 0.9, cfg.eps = 1e-3, cfg.weight_decay = 1e-2;
  Pair p;
  auto w = p.w.detach().clone(), b = p.b.detach().clone();
  auto sq_w = torch::ones_like(w), sq_b = torch::ones_like(b);  // TF starts the mean square at 1
  auto mw = torch::zeros_like(w), mb = torch::zeros_like(b);
  for (int i = 0; i < 3; ++i) {
    auto g = p.gw + 1e-2 * w;  // L2 decay on the weight only
    sq_w = 0.9 * sq_w + 0.1 * g * g;
    mw = 0.9 * mw + 0.05 * g / (sq_w + 1e-3).sqrt();  // lr inside the momentum
    w = w - mw;
    sq_b = 0.9 * sq_b + 0.1 * p.gb * p.gb;
    mb = 0.9 * mb + 0.05 * p.gb / (sq_b + 1e-3).sqrt();
    b = b - mb;
  }
  p.run(cfg, 0.05, 3);
  EXPECT_TRUE(torch::allclose(p.w, w, 1e-12, 1e-14));
  EXPECT_TRUE(torch::allclose(p.b, b, 1e-12, 1e-14));
}

TEST(Optimizer, LambTrustRatioByHand) {
  OptimConfig cfg;
  cfg.name = "lamb", cfg.beta1 = 0.9, cfg.beta2 = 0.999, cfg.eps = 1e-6, cfg.weight_decay = 0.1;
  Pair p;
  auto w = p.w.detach().clone(), b = p.b.detach().clone();
  // Step 1: m = (1-b1) g, v = (1-b2) g^2, bias-corrected -> g / (|g| + eps).
  auto u = p.gw / (p.gw.abs() + 1e-6) + 0.1 * w;
  w = w - 0.01 * (w.norm() / u.norm()) * u;
  b = b - 0.01 * (p.gb / (p.gb.abs() + 1e-6));  // no decay, no trust ratio on biases
  p.run(cfg, 0.01, 1);
  EXPECT_TRUE(torch::allclose(p.w, w, 1e-12, 1e-14));
  EXPECT_TRUE(torch::allclose(p.b, b, 1e-12, 1e-14));
}

TEST(Optimizer, LarsTrustRatioByHand) {
  OptimConfig cfg;
  cfg.name = "lars", cfg.momentum = 0.9, cfg.nesterov = false, cfg.weight_decay = 1e-4,
  cfg.trust_coef = 0.001;
  Pair p;
  auto w = p.w.detach().clone(), b = p.b.detach().clone();
  auto buf_w = torch::zeros_like(w), buf_b = torch::zeros_like(b);
  for (int i = 0; i < 2; ++i) {
    const double trust = 0.001 * w.norm().item<double>() /
                         (p.gw.norm().item<double>() + 1e-4 * w.norm().item<double>() + 1e-12);
    buf_w = 0.9 * buf_w + trust * (p.gw + 1e-4 * w);
    w = w - 0.5 * buf_w;
    buf_b = 0.9 * buf_b + p.gb;  // biases: plain momentum SGD
    b = b - 0.5 * buf_b;
  }
  p.run(cfg, 0.5, 2);
  EXPECT_TRUE(torch::allclose(p.w, w, 1e-12, 1e-14));
  EXPECT_TRUE(torch::allclose(p.b, b, 1e-12, 1e-14));
}

TEST(Optimizer, NoDecayOnViTTokensUnlessAsked) {
  OptimConfig cfg;
  NamedTensors params = {{"class_token", torch::zeros({1, 1, 4})},
                         {"encoder.pos_embedding", torch::zeros({1, 5, 4})},
                         {"conv_proj.weight", torch::zeros({4, 3, 2, 2})},
                         {"conv_proj.bias", torch::zeros({4})}};
  auto s = param_settings(cfg, params);
  EXPECT_FALSE(s[0].decay);
  EXPECT_FALSE(s[1].decay);
  EXPECT_TRUE(s[2].decay);
  EXPECT_FALSE(s[3].decay);
  cfg.decay_bias_and_norm = true;
  s = param_settings(cfg, params);
  for (const auto& x : s) EXPECT_TRUE(x.decay);
}

TEST(Optimizer, LayerDecayScalesByDepth) {
  OptimConfig cfg;
  cfg.layer_decay = 0.5;
  // A 2-block ViT: embeddings id 0, blocks 1 and 2, head 3 -> scales 1/8, 1/4, 1/2, 1.
  NamedTensors vit = {{"class_token", torch::zeros({1, 1, 4})},
                      {"conv_proj.weight", torch::zeros({4, 3, 2, 2})},
                      {"encoder.pos_embedding", torch::zeros({1, 5, 4})},
                      {"encoder.layers.encoder_layer_0.ln_1.weight", torch::zeros({4})},
                      {"encoder.layers.encoder_layer_1.mlp.0.weight", torch::zeros({8, 4})},
                      {"encoder.ln.weight", torch::zeros({4})},
                      {"heads.head.weight", torch::zeros({10, 4})}};
  auto s = param_settings(cfg, vit);
  const double want[] = {0.125, 0.125, 0.125, 0.25, 0.5, 1.0, 1.0};
  for (size_t i = 0; i < vit.size(); ++i) EXPECT_DOUBLE_EQ(s[i].lr_scale, want[i]) << vit[i].first;
  // EfficientNet: features.0 (stem) id 0, features.1 id 1, classifier id 2.
  NamedTensors eff = {{"features.0.0.weight", torch::zeros({8, 3, 3, 3})},
                      {"features.1.0.block.0.0.weight", torch::zeros({8, 1, 3, 3})},
                      {"classifier.1.weight", torch::zeros({10, 8})}};
  s = param_settings(cfg, eff);
  EXPECT_DOUBLE_EQ(s[0].lr_scale, 0.25);
  EXPECT_DOUBLE_EQ(s[1].lr_scale, 0.5);
  EXPECT_DOUBLE_EQ(s[2].lr_scale, 1.0);
  // Other models are refused, naming the key.
  NamedTensors cnn = {{"features.0.weight", torch::zeros({8, 1, 3, 3})}, {"fc.weight", torch::zeros({10, 8})}};
  try {
    param_settings(cfg, cnn);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("optim.layer_decay"), std::string::npos) << e.what();
  }
}

TEST(Optimizer, LayerDecayScalesTheUpdate) {
  OptimConfig cfg;
  cfg.momentum = 0, cfg.weight_decay = 0, cfg.layer_decay = 0.5;
  auto stem = torch::zeros({2, 1, 1, 1}).requires_grad_();
  auto head = torch::zeros({3, 2}).requires_grad_();
  auto opt = make_optimizer(cfg, {{"features.0.0.weight", stem}, {"classifier.1.weight", head}});
  stem.mutable_grad() = torch::ones_like(stem);
  head.mutable_grad() = torch::ones_like(head);
  opt->step(1.0);
  EXPECT_TRUE(torch::allclose(stem, torch::full_like(stem, -0.5)));
  EXPECT_TRUE(torch::allclose(head, torch::full_like(head, -1.0)));
  // Only the head trainable (model.freeze of the rest): its full rate, not "needs a ViT or
  // EfficientNet model".
  auto lone = torch::zeros({3, 2}).requires_grad_();
  auto head_only = make_optimizer(cfg, {{"heads.head.weight", lone}});
  lone.mutable_grad() = torch::ones_like(lone);
  head_only->step(1.0);
  EXPECT_TRUE(torch::allclose(lone, torch::full_like(lone, -1.0)));
}

TEST(Optimizer, ClipGradNormScalesToTheLimit) {
  auto a = torch::zeros({2}).requires_grad_(), b = torch::zeros({1}).requires_grad_();
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  NamedTensors params = {{"a", a}, {"b", b}};
  const auto under = clip_grad_norm(params, 10.0);  // under the limit: unchanged
  EXPECT_EQ(under.dim(), 0);
  EXPECT_EQ(under.scalar_type(), torch::kDouble);
  EXPECT_NEAR(under.item<double>(), 5.0, 1e-6);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({3.0f, 0.0f})));
  EXPECT_NEAR(clip_grad_norm(params, 1.0).item<double>(), 5.0, 1e-6);
  EXPECT_NEAR(grad_norm(params).item<double>(), 1.0, 1e-5);
  EXPECT_TRUE(torch::allclose(b.grad(), torch::tensor({0.8f}), 1e-5));
  EXPECT_EQ(grad_norm({{"none", torch::zeros({2})}}).item<double>(), 0.0);  // no gradients
}

TEST(Optimizer, ClipGradNormLeavesNonFiniteGradientsAlone) {
  auto a = torch::zeros({2}).requires_grad_();
  a.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity(), 1.0f});
  const auto norm = clip_grad_norm({{"a", a}}, 1.0);
  EXPECT_TRUE(std::isinf(norm.item<double>()));
  EXPECT_EQ(a.grad()[1].item<float>(), 1.0f);  // not scaled to 0 by max / inf
}

TEST(Schedule, StepExponentialAndWarmupStart) {
  ScheduleConfig s;
  s.name = "step", s.decay_epochs = 2.4, s.decay_rate = 0.97;
  // 10 steps per epoch: the first decay at step 24 (epoch 2.4), the second at 48.
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 23, 0, 1000, 10), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 24, 0, 1000, 10), 0.97);
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 48, 0, 1000, 10), 0.97 * 0.97);
  s.name = "exponential";
  EXPECT_NEAR(lr_at(s, 1.0, 12, 0, 1000, 10), std::pow(0.97, 0.5), 1e-12);
  s.min_lr_ratio = 0.5;
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 100000, 0, 1000, 10), 0.5);
  s.name = "cosine", s.min_lr_ratio = 0, s.warmup_start = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 0, 10, 100, 10), 0.1 + 0.9 * 0.1);
  EXPECT_DOUBLE_EQ(lr_at(s, 1.0, 9, 10, 100, 10), 1.0);
}
