// EMA of the weights, the fp16 loss scaler, parameter freezing, autocast scope.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/ema.h"
#include "train/freeze.h"
#include "train/precision.h"

using namespace odyssey;

TEST(Ema, AveragesWithWarmupAndSwapsBack) {
  auto w = torch::zeros({2}).requires_grad_();
  Ema ema({{"w", w}}, {}, 0.9, /*warmup=*/false);
  torch::NoGradGuard no_grad;
  w.fill_(1.0);
  ema.update(1);  // 0.9 * 0 + 0.1 * 1
  EXPECT_TRUE(torch::allclose(ema.state()[0].second, torch::full({2}, 0.1f)));
  w.fill_(2.0);
  ema.update(2);  // 0.9 * 0.1 + 0.1 * 2
  EXPECT_TRUE(torch::allclose(ema.state()[0].second, torch::full({2}, 0.29f)));
  ema.swap();
  EXPECT_TRUE(torch::allclose(w, torch::full({2}, 0.29f)));
  ema.swap();
  EXPECT_TRUE(torch::allclose(w, torch::full({2}, 2.0f)));
  Ema warm({{"w", w}}, {}, 0.9999, /*warmup=*/true);
  EXPECT_DOUBLE_EQ(warm.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(warm.decay_at(1000000), 0.9999);
}

TEST(Ema, AveragesBatchNormStatisticsWithTheWeightsButNotCounters) {
  // timm's ModelEmaV2/V3 and TensorFlow's EfficientNet average the running statistics too: the
  // averaged weights are evaluated with statistics of the same age.
  auto w = torch::zeros({2}).requires_grad_();
  auto mean = torch::zeros({3}), count = torch::zeros({}, torch::kLong);
  Ema ema({{"w", w}}, {{"bn.running_mean", mean}, {"bn.num_batches_tracked", count}}, 0.5, false);
  ASSERT_EQ(ema.state().size(), 2u);  // the counter is not averaged
  EXPECT_EQ(ema.state()[1].first, "bn.running_mean");
  EXPECT_EQ(ema.parameter_count(), 1u);
  torch::NoGradGuard no_grad;
  mean.fill_(4.0), count.fill_(7);
  ema.update(1);
  EXPECT_TRUE(torch::allclose(ema.buffers()[0], torch::full({3}, 2.0f)));
  ema.swap();  // evaluation sees the averaged statistics
  EXPECT_TRUE(torch::allclose(mean, torch::full({3}, 2.0f)));
  EXPECT_EQ(count.item<int64_t>(), 7);
  ema.swap();
  EXPECT_TRUE(torch::allclose(mean, torch::full({3}, 4.0f)));
  ema.reset_buffers();  // a checkpoint without them: restart at the live statistics
  EXPECT_TRUE(torch::allclose(ema.buffers()[0], torch::full({3}, 4.0f)));
}

TEST(LossScaler, HalvesOnOverflowGrowsAfterCleanSteps) {
  LossScaler s(1024.0, /*growth_interval=*/2);
  auto p = torch::zeros({2}).requires_grad_();
  NamedTensors params = {{"p", p}};
  p.mutable_grad() = torch::full({2}, 2048.0f);
  EXPECT_TRUE(s.unscale_and_check(params));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::full({2}, 2.0f)));  // divided by the scale
  EXPECT_DOUBLE_EQ(s.scale(), 1024.0);
  p.mutable_grad() = torch::full({2}, 1.0f);
  EXPECT_TRUE(s.unscale_and_check(params));
  EXPECT_DOUBLE_EQ(s.scale(), 2048.0);  // two clean steps: grows
  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity()});
  EXPECT_FALSE(s.unscale_and_check(params));
  EXPECT_DOUBLE_EQ(s.scale(), 1024.0);  // overflow: halves, step to be skipped
  auto q = torch::zeros({3}).requires_grad_();  // a NaN in the first of two parameters
  NamedTensors two = {{"q", q}, {"p", p}};
  q.mutable_grad() = torch::tensor({1.0f, std::nanf(""), 1.0f});
  p.mutable_grad() = torch::full({2}, 1024.0f);
  EXPECT_FALSE(s.unscale_and_check(two));
  EXPECT_DOUBLE_EQ(s.scale(), 512.0);
  EXPECT_TRUE(torch::allclose(p.grad(), torch::full({2}, 1.0f)));  // every gradient unscaled
}

TEST(Precision, Fp16NeedsCudaAndBf16AutocastsOnCpu) {
  EXPECT_THROW(check_precision("fp16", torch::kCPU, "x.toml"), std::exception);
  check_precision("bf16", torch::kCPU, "x.toml");
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    AutocastScope scope("bf16", torch::kCPU);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);  // off again after the scope
  AutocastScope off("fp32", torch::kCPU);
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(Freeze, PatternsFreezeAndUnmatchedPatternsFail) {
  torch::nn::Sequential net(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2),
                            torch::nn::Linear(2, 3));
  NamedTensors params;
  for (auto& p : net->named_parameters()) params.emplace_back(p.key(), p.value());
  auto trainable = freeze_parameters(params, {"0.*", "1.*"}, "test.toml");
  ASSERT_EQ(trainable.size(), 2u);
  EXPECT_EQ(trainable[0].first, "2.weight");
  EXPECT_FALSE(net->named_parameters()["0.weight"].requires_grad());
  set_train_mode(*net);
  EXPECT_FALSE(net[1]->is_training());  // frozen BatchNorm keeps its statistics
  EXPECT_TRUE(net[2]->is_training());
  try {
    freeze_parameters(params, {"features.*"}, "test.toml");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("features.*"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.freeze"), std::string::npos) << e.what();
  }
}
