// Every one of Odyssey's own autograd nodes whose backward computes outside autograd refuses a
// backward with create_graph (a second derivative through it would be silently zero), naming
// itself, and still runs a plain backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

#include "models/attention.h"
#include "models/channel_scale.h"
#include "models/cpu_gemm.h"
#include "models/depthwise_conv.h"
#include "models/gelu.h"
#include "models/layer_norm.h"
#include "models/linear.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::error_of;

namespace {

// f(x) with x [2, 4, 8, 8] (channels-last) needing a gradient; the gradients asked for: x's and
// those of `params`.
void expect_first_derivative_only(const char* name, const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                  std::vector<torch::Tensor> params = {}) {
  SCOPED_TRACE(name);
  torch::manual_seed(1);
  auto x = torch::randn({2, 4, 8, 8}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  params.insert(params.begin(), x);
  const auto z = f(x).pow(2).sum();
  const auto message = error_of([&] { torch::autograd::grad({z}, params, {}, true, /*create_graph=*/true); });
  EXPECT_NE(message.find(std::string(name) + " has no second derivative"), std::string::npos) << message;
  EXPECT_TRUE(torch::autograd::grad({f(x).pow(2).sum()}, params)[0].defined());
}

}  // namespace

TEST(CustomNodes, RefuseCreateGraph) {
  expect_first_derivative_only("odyssey::gelu", [](const torch::Tensor& x) { return odyssey::gelu(x); });
  expect_first_derivative_only("odyssey::channel_scale", [](const torch::Tensor& x) {
    return channel_scale(x, torch::sigmoid(channel_mean(x)));
  });
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({8}));  // over x's last dimension
  expect_first_derivative_only("odyssey::layer_norm", [&](const torch::Tensor& x) { return layer_norm(x, ln); },
                               {ln->weight, ln->bias});
  const auto w = torch::randn({4, 1, 5, 5}, torch::requires_grad());  // 5x5: Odyssey's filter gradient
  expect_first_derivative_only("odyssey::depthwise_conv2d's filter gradient", [&](const torch::Tensor& x) {
    return depthwise_conv2d(x, w, {1, 1}, {2, 2});
  }, {w});
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  odyssey::testing::GemmChoice choice(CpuGemm::kOneDnn);
  const auto lw = torch::randn({6, 8}, torch::requires_grad()), lb = torch::randn({6}, torch::requires_grad());
  expect_first_derivative_only("odyssey::linear", [&](const torch::Tensor& x) { return linear(x, lw, lb); });
  const auto cw = torch::randn({3, 4, 1, 1}, torch::requires_grad());  // conv1x1: linear's node, no bias
  expect_first_derivative_only("odyssey::linear", [&](const torch::Tensor& x) { return conv1x1(x, cw, {}); }, {cw});
  auto qkv = [](const torch::Tensor& x) {  // [B, T, 3 x 2 heads x 4] from x's 512 values
    return x.reshape({2, 256}).narrow(1, 0, 240).reshape({2, 10, 24});
  };
  if (!onednn_attention_applies(qkv(torch::zeros({2, 4, 8, 8})))) return;  // LibTorch 2.x: SDPA
  expect_first_derivative_only("odyssey::self_attention", [&](const torch::Tensor& x) {
    return self_attention_core(qkv(x), 2);
  });
}
