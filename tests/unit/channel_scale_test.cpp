// models/channel_scale.h's squeeze-excitation nodes against LibTorch's expressions in double
// precision (NCHW and channels-last, 1x1 to 17x13 images, gradients of x and s through a sigmoid
// gate), the same bits at any thread count, the fallbacks (double, no gradients), and a whole
// EfficientNet step in float against double.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/channel_scale.h"
#include "models/registry.h"
#include "test_util.h"
#include "train/device.h"


using namespace odyssey;

namespace {

struct Grads {
  torch::Tensor y, gx, gw;
};

// y = channel_scale(x, sigmoid(channel_mean(x) * w)): both nodes, with x reaching the output
// through both paths as in squeeze-excitation; w [1, C, 1, 1] stands in for the SE's layers.
Grads se(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& gy, bool ours,
         bool channels_last) {
  const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  auto x = x0.detach().clone(format).requires_grad_(), w = w0.detach().clone().requires_grad_();
  auto m = ours ? channel_mean(x) : x.mean({2, 3}, /*keepdim=*/true);
  auto s = torch::sigmoid(m * w);
  auto y = ours ? channel_scale(x, s) : x * s;
  y.backward(gy);
  return {y.detach(), x.grad(), w.grad()};
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b).abs().max().item<double>() / b.abs().max().item<double>();
}

}  // namespace

TEST(ChannelScale, MatchesLibTorchInDoublePrecision) {
  const std::vector<std::vector<int64_t>> shapes = {{4, 24, 16, 16}, {3, 5, 17, 13}, {2, 40, 1, 1}, {1, 1, 7, 7}};
  for (const auto& shape : shapes)
    for (bool cl : {false, true}) {
      SCOPED_TRACE(::testing::Message() << torch::IntArrayRef(shape) << (cl ? " channels-last" : " NCHW"));
      torch::manual_seed(1);
      const auto x = torch::randn(shape, torch::kDouble), w = torch::randn({1, shape[1], 1, 1}, torch::kDouble);
      const auto gy = torch::randn(shape, torch::kDouble);
      const auto ref = se(x, w, gy, /*ours=*/false, cl);
      const auto xf = x.to(torch::kFloat), wf = w.to(torch::kFloat), gf = gy.to(torch::kFloat);
      ASSERT_TRUE(channel_mean_applies(xf.contiguous(cl ? torch::MemoryFormat::ChannelsLast
                                                           : torch::MemoryFormat::Contiguous)));
      const auto got = se(xf, wf, gf, /*ours=*/true, cl);
      EXPECT_LT(rel(got.y, ref.y), 1e-6);
      EXPECT_LT(rel(got.gx, ref.gx), 1e-5);
      EXPECT_LT(rel(got.gw, ref.gw), 1e-5);
      EXPECT_EQ(got.gx.is_contiguous(torch::MemoryFormat::ChannelsLast), cl || shape[2] * shape[3] == 1 || shape[1] == 1);
    }
}

TEST(ChannelScale, SameBitsAtAnyThreadCount) {
  torch::manual_seed(2);
  const auto x = torch::randn({8, 32, 9, 9}), w = torch::randn({1, 32, 1, 1}), gy = torch::randn({8, 32, 9, 9});
  const auto one = odyssey::testing::with_threads(1, [&] { return se(x, w, gy, true, true); });
  const auto two = odyssey::testing::with_threads(2, [&] { return se(x, w, gy, true, true); });
  EXPECT_TRUE(torch::equal(one.gx, two.gx));
  EXPECT_TRUE(torch::equal(one.gw, two.gw));
}

TEST(ChannelScale, FallsBackToLibTorch) {
  const auto x = torch::randn({2, 3, 4, 4}, torch::kDouble);
  const auto s = torch::rand({2, 3, 1, 1}, torch::kDouble);
  EXPECT_FALSE(channel_mean_applies(x));
  EXPECT_FALSE(channel_scale_applies(x, s));
  EXPECT_TRUE(torch::equal(channel_scale(x, s), x * s));
  EXPECT_TRUE(torch::equal(channel_mean(x), x.mean({2, 3}, true)));
  const auto xf = x.to(torch::kFloat);
  EXPECT_FALSE(channel_scale_applies(xf, s.to(torch::kFloat).view({2, 3, 1, 1}).expand({2, 3, 4, 1})));
  EXPECT_FALSE(channel_mean_applies(xf.transpose(2, 3)));  // dense in neither layout
  {
    torch::NoGradGuard g;  // no node without gradients: the same values
    EXPECT_TRUE(torch::equal(channel_scale(xf, s.to(torch::kFloat)), xf * s.to(torch::kFloat)));
  }
}

// A whole EfficientNet training step in float channels-last, where Odyssey's CPU nodes run
// (BatchNorm-SiLU, depthwise filter gradients, both squeeze-excitation nodes), against the same
// model in double precision (LibTorch's operators throughout): every gradient within 1e-4 of the
// largest.
TEST(ChannelScale, EfficientNetStepInFloatMatchesDouble) {
  ModelOptions mo;
  mo.num_classes = 10, mo.in_channels = 3, mo.image_size = 32, mo.dropout = 0, mo.stochastic_depth = 0;
  torch::manual_seed(4);
  auto f32 = ModelRegistry::instance().create("efficientnet_s", mo);
  torch::manual_seed(4);
  auto f64 = ModelRegistry::instance().create("efficientnet_s", mo);
  f64->to(torch::kDouble);
  to_channels_last(*f32);
  torch::manual_seed(5);
  const auto x = torch::randn({6, 3, 32, 32});
  const auto labels = torch::randint(0, 10, {6});
  const int calls = odyssey::testing::recorded_calls("odyssey::channel_scale", [&] {
    torch::nn::functional::cross_entropy(f32->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)), labels)
        .backward();
  });
  torch::nn::functional::cross_entropy(f64->forward(x.to(torch::kDouble)), labels).backward();
  EXPECT_GT(calls, 4);  // every block's squeeze-excitation ran Odyssey's node
  double largest = 0;
  for (const auto& p : f64->parameters()) largest = std::max(largest, p.grad().abs().max().item<double>());
  const auto p32 = f32->named_parameters();
  for (const auto& p : f64->named_parameters()) {
    SCOPED_TRACE(p.key());
    EXPECT_LT((p32[p.key()].grad().to(torch::kDouble) - p.value().grad()).abs().max().item<double>(),
              1e-4 * largest);
  }
}
