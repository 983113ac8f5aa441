// linear() through oneDNN's sgemm against LibTorch's linear in double precision (forward, input,
// weight and bias gradients; 2-D, 3-D and non-contiguous inputs, no bias), the no-gradient path,
// the fallbacks to LibTorch (double, autocast, train.cpu_gemm = "libtorch"), train.cpu_gemm's
// checks, and a whole ViT trained one step either way. conv1x1 the same way against
// torch::conv2d, which Conv2d layers take it, its MAC count, and EfficientNet either way.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "common/error.h"
#include "models/conv2d.h"
#include "models/cpu_gemm.h"
#include "models/flops.h"
#include "models/linear.h"
#include "models/registry.h"
#include "test_util.h"
#include "train/device.h"
#include "train/precision.h"

using namespace odyssey;
using odyssey::testing::GemmChoice;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

namespace {

struct Grads {
  torch::Tensor y, gx, gw, gb;
};

Grads run(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0, bool ours,
          bool transpose_input = false) {
  auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
  auto b = b0.defined() ? b0.clone().requires_grad_() : torch::Tensor();
  auto in = transpose_input ? x.transpose(0, 1) : x;  // a non-contiguous view
  auto y = ours ? linear(in, w, b) : torch::linear(in, w, b);
  torch::manual_seed(3);
  y.backward(torch::randn(y.sizes(), torch::kDouble).to(y.scalar_type()));
  return {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

}  // namespace

TEST(Linear, OneDnnMatchesLibTorchInDoublePrecision) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  struct Case {
    std::vector<int64_t> x;
    int64_t out;
    bool transpose;
    bool bias = true;
  };
  const Case cases[] = {
      {{8, 50, 192}, 576, false},  // ViT-Ti qkv projection
      {{8, 50, 768}, 192, false},  // MLP fc2
      {{37, 13}, 29, false},       // odd sizes, 2-D
      {{5, 1}, 3, false},          // contraction of length 1
      {{50, 8, 64}, 96, true},     // transposed (non-contiguous) input
      {{9, 40}, 24, false, false}, // no bias
  };
  for (const auto& k : cases) {
    torch::manual_seed(1);
    auto x = torch::randn(k.x, torch::kDouble);
    auto w = torch::randn({k.out, k.x.back()}, torch::kDouble) * 0.1;
    auto b = k.bias ? torch::randn({k.out}, torch::kDouble) : torch::Tensor();
    const auto bf = k.bias ? b.to(torch::kFloat) : torch::Tensor();
    ASSERT_TRUE(onednn_linear_applies(x.to(torch::kFloat), w.to(torch::kFloat), bf));
    const auto ref = run(x, w, b, /*ours=*/false, k.transpose);
    const auto got = run(x.to(torch::kFloat), w.to(torch::kFloat), bf, /*ours=*/true, k.transpose);
    const std::string what = "x " + c10::str(k.x) + " -> " + std::to_string(k.out);
    ASSERT_EQ(got.y.sizes(), ref.y.sizes()) << what;
    EXPECT_LT(rel_err(got.y.to(torch::kDouble), ref.y), 1e-5) << what;
    EXPECT_LT(rel_err(got.gx.to(torch::kDouble), ref.gx), 1e-5) << what;
    EXPECT_LT(rel_err(got.gw.to(torch::kDouble), ref.gw), 1e-5) << what;
    if (k.bias) EXPECT_LT(rel_err(got.gb.to(torch::kDouble), ref.gb), 1e-5) << what;
  }
}

TEST(Linear, NoGradientForwardIsTheTrainingForward) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  torch::manual_seed(2);
  auto x = torch::randn({4, 10, 32}), w = torch::randn({48, 32}), b = torch::randn({48});
  const auto trained = linear(x, w.requires_grad_(), b.requires_grad_());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(linear(x, w, b), trained.detach()));
}

TEST(Linear, FallsBackToLibTorchWhereOneDnnDoesNotApply) {
  torch::manual_seed(4);
  auto x = torch::randn({6, 16}), w = torch::randn({8, 16}), b = torch::randn({8});
  {
    GemmChoice choice(CpuGemm::kLibTorch);
    EXPECT_FALSE(onednn_linear_applies(x, w, b));
    EXPECT_TRUE(torch::equal(linear(x, w, b), torch::linear(x, w, b)));
  }
  if (!onednn_sgemm_available()) return;
  GemmChoice choice(CpuGemm::kOneDnn);
  EXPECT_FALSE(onednn_linear_applies(x.to(torch::kDouble), w.to(torch::kDouble), b.to(torch::kDouble)));
  EXPECT_FALSE(onednn_linear_applies(x, w, b.view({2, 4})));
  {
    AutocastScope bf16("bf16", torch::kCPU);
    EXPECT_FALSE(onednn_linear_applies(x, w, b));
    EXPECT_EQ(linear(x, w, b).scalar_type(), torch::kBFloat16);  // autocast's linear, as LibTorch's
  }
}

TEST(Linear, CpuGemmSettingIsChecked) {
  EXPECT_EQ(resolve_cpu_gemm("libtorch", "k"), CpuGemm::kLibTorch);
  EXPECT_EQ(resolve_cpu_gemm("auto", "k"),
            onednn_sgemm_available() ? CpuGemm::kOneDnn : CpuGemm::kLibTorch);
  try {
    resolve_cpu_gemm("mkl", "cfg.toml: train.cpu_gemm");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.toml: train.cpu_gemm = \"mkl\""), std::string::npos) << e.what();
  }
  if (onednn_sgemm_available()) {
    EXPECT_EQ(resolve_cpu_gemm("onednn", "k"), CpuGemm::kOneDnn);
    EXPECT_NE(cpu_gemm_name(CpuGemm::kOneDnn).find("oneDNN"), std::string::npos);
  } else {
    EXPECT_THROW(resolve_cpu_gemm("onednn", "k"), Error);
  }
}

// A ViT's forward, gradients and one SGD step agree either way (the wiring: projections, MLP order,
// head), to float rounding.
TEST(Linear, VitTrainsAlikeWithEitherGemm) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  auto step = [](CpuGemm g) {
    GemmChoice choice(g);
    torch::manual_seed(5);
    auto model = ModelRegistry::instance().create("vit_mini4", {10, 1, 28});
    model->train();
    {  // the head starts at zero (torchvision), which would leave every other gradient zero
      torch::NoGradGuard no_grad;
      for (auto& p : model->named_parameters())
        if (p.key() == "heads.head.weight") p.value().normal_(0, 0.1);
    }
    auto x = torch::randn({6, 1, 28, 28});
    auto y = torch::randint(0, 10, {6}, torch::kLong);
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), grads);
  };
  const auto ours = step(CpuGemm::kOneDnn), ref = step(CpuGemm::kLibTorch);
  EXPECT_NEAR(ours.first, ref.first, 1e-5 * std::abs(ref.first));
  ASSERT_EQ(ours.second.size(), ref.second.size());
  for (size_t i = 0; i < ref.second.size(); ++i)
    EXPECT_LT(rel_err(ours.second[i], ref.second[i]), 1e-4) << "parameter " << i;
}

namespace {

constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

// How many convolutions took conv1x1's oneDNN path while f ran (it records each as an operator).
template <class F>
int conv1x1_calls(F f) {
  return odyssey::testing::recorded_calls("odyssey::conv2d_1x1", f);
}

Grads run_conv(const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0, bool ours) {
  auto x = x0.clone(kChannelsLast).requires_grad_(), w = w0.clone().requires_grad_();
  auto b = b0.defined() ? b0.clone().requires_grad_() : torch::Tensor();
  auto y = ours ? conv1x1(x, w, b) : torch::conv2d(x, w, b);
  torch::manual_seed(3);
  y.backward(torch::randn(y.sizes(), torch::kDouble).to(y.scalar_type()).contiguous(kChannelsLast));
  return {y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : torch::Tensor()};
}

}  // namespace

TEST(Conv1x1, OneDnnMatchesLibTorchInDoublePrecision) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  struct Case {
    std::vector<int64_t> x;  // N, C, H, W
    int64_t out;
    bool bias;
  };
  const Case cases[] = {
      {{4, 24, 16, 16}, 144, false},  // EfficientNet-B0's expand layer
      {{4, 144, 8, 8}, 40, false},    // its project layer
      {{3, 7, 5, 9}, 11, true},       // odd sizes, with a bias
      {{6, 40, 1, 1}, 10, true},      // squeeze-excitation's [N, C, 1, 1]
      {{1, 1, 3, 3}, 5, false},       // one input channel
  };
  for (const auto& k : cases) {
    torch::manual_seed(1);
    auto x = torch::randn(k.x, torch::kDouble);
    auto w = torch::randn({k.out, k.x[1], 1, 1}, torch::kDouble) * 0.1;
    auto b = k.bias ? torch::randn({k.out}, torch::kDouble) : torch::Tensor();
    const auto xf = x.to(torch::kFloat).contiguous(kChannelsLast), wf = w.to(torch::kFloat);
    const auto bf = k.bias ? b.to(torch::kFloat) : torch::Tensor();
    ASSERT_TRUE(conv1x1_applies(xf, wf, bf));
    const auto ref = run_conv(x, w, b, /*ours=*/false);
    Grads got;
    EXPECT_EQ(conv1x1_calls([&] { got = run_conv(xf, wf, bf, /*ours=*/true); }), 1);
    const std::string what = "x " + c10::str(k.x) + " -> " + std::to_string(k.out);
    ASSERT_EQ(got.y.sizes(), ref.y.sizes()) << what;
    EXPECT_TRUE(got.y.is_contiguous(kChannelsLast)) << what;
    EXPECT_TRUE(got.gx.is_contiguous(kChannelsLast)) << what << ": the input gradient was copied";
    EXPECT_EQ(got.gw.sizes(), ref.gw.sizes()) << what;
    EXPECT_LT(rel_err(got.y.to(torch::kDouble), ref.y), 1e-5) << what;
    EXPECT_LT(rel_err(got.gx.to(torch::kDouble), ref.gx), 1e-5) << what;
    EXPECT_LT(rel_err(got.gw.to(torch::kDouble), ref.gw), 1e-5) << what;
    if (k.bias) EXPECT_LT(rel_err(got.gb.to(torch::kDouble), ref.gb), 1e-5) << what;
    torch::NoGradGuard no_grad;  // the no-gradient forward is the training forward
    EXPECT_TRUE(torch::equal(conv1x1(xf, wf, bf), got.y)) << what;
  }
}

TEST(Conv1x1, FallsBackToLibTorchWhereOneDnnDoesNotApply) {
  torch::manual_seed(4);
  auto x = torch::randn({2, 8, 5, 5}), w = torch::randn({6, 8, 1, 1});
  const auto xcl = x.contiguous(kChannelsLast);
  {
    GemmChoice choice(CpuGemm::kLibTorch);
    EXPECT_FALSE(conv1x1_applies(xcl, w, {}));
    EXPECT_EQ(conv1x1_calls([&] { EXPECT_TRUE(torch::equal(conv1x1(xcl, w, {}), torch::conv2d(xcl, w))); }), 0);
  }
  if (!onednn_sgemm_available()) return;
  GemmChoice choice(CpuGemm::kOneDnn);
  EXPECT_FALSE(conv1x1_applies(x, w, {})) << "NCHW images: LibTorch's convolution";
  EXPECT_TRUE(torch::equal(conv1x1(x, w, {}), torch::conv2d(x, w)));
  EXPECT_FALSE(conv1x1_applies(xcl.to(torch::kDouble), w.to(torch::kDouble), {}));
  EXPECT_FALSE(conv1x1_applies(xcl, torch::randn({6, 8, 3, 3}), {}));
  {
    AutocastScope bf16("bf16", torch::kCPU);
    EXPECT_FALSE(conv1x1_applies(xcl, w, {}));
  }
}

TEST(Conv1x1, ConvLayersWithStrideOneAndNoPaddingTakeIt) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  namespace nn = torch::nn;
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 4, 6, 6}).contiguous(kChannelsLast);
  for (auto layer : {nn::Conv2d(nn::Conv2dOptions(4, 6, 1).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(4, 6, 1).bias(true))}) {
    torch::Tensor y;
    EXPECT_EQ(conv1x1_calls([&] { y = conv2d_forward(layer, x); }), 1) << layer;
    EXPECT_LT(rel_err(y, layer->forward(x)), 1e-6) << layer;
  }
  for (auto layer : {nn::Conv2d(nn::Conv2dOptions(4, 6, 1).stride(2).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(4, 6, 1).padding(1).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(4, 6, 1).groups(2).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(4, 6, 1).dilation(2).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(4, 6, 3).stride(2).bias(false))}) {
    EXPECT_EQ(conv1x1_calls([&] { conv2d_forward(layer, x); }), 0) << layer;
    EXPECT_TRUE(torch::equal(conv2d_forward(layer, x), layer->forward(x))) << layer;
  }
  // The MAC counter sees it as the convolution it is.
  MacCounter counter;
  conv2d_forward(nn::Conv2d(nn::Conv2dOptions(4, 6, 1).bias(false)), x);
  EXPECT_EQ(counter.count().by_kind.at("conv"), 2 * 6 * 6 * 6 * 4);
  EXPECT_EQ(counter.count().total(), 2 * 6 * 6 * 6 * 4);
}

// EfficientNet's forward and every gradient agree either way (its expand and project layers,
// the squeeze-excitation's 1x1 layers go through conv1x1 with oneDNN), channels-last as trained:
// each gradient within 1e-4 of the largest (the BatchNorm biases after the project layers have a
// gradient of zero up to rounding: a BatchNorm follows the next convolution).
TEST(Conv1x1, EfficientNetTrainsAlikeWithEitherGemm) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  auto step = [](CpuGemm g) {
    GemmChoice choice(g);
    torch::manual_seed(5);
    ModelOptions mo;
    mo.num_classes = 10, mo.in_channels = 3, mo.image_size = 32, mo.dropout = 0, mo.stochastic_depth = 0;
    auto model = ModelRegistry::instance().create("efficientnet_s", mo);
    to_channels_last(*model);
    model->train();
    auto x = torch::randn({4, 3, 32, 32}).contiguous(kChannelsLast);
    auto y = torch::randint(0, 10, {4}, torch::kLong);
    double loss_value = 0;
    const int calls = conv1x1_calls([&] {
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      loss_value = loss.item<double>();
    });
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_tuple(loss_value, grads, calls);
  };
  const auto [loss, grads, calls] = step(CpuGemm::kOneDnn);
  const auto [ref_loss, ref_grads, ref_calls] = step(CpuGemm::kLibTorch);
  EXPECT_GT(calls, 0) << "no 1x1 convolution took oneDNN's path";
  EXPECT_EQ(ref_calls, 0);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss));
  ASSERT_EQ(grads.size(), ref_grads.size());
  double largest = 0;
  for (const auto& g : ref_grads) largest = std::max(largest, g.abs().max().item<double>());
  for (size_t i = 0; i < ref_grads.size(); ++i)
    EXPECT_LT((grads[i] - ref_grads[i]).abs().max().item<double>(), 1e-4 * largest) << "parameter " << i;
}
