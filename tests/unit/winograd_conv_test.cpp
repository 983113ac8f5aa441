// conv3x3 by Winograd's F(2x2, 3x3) against LibTorch's convolution in double precision (forward,
// input and filter gradients; odd and even sizes, 1x1 to 16x16 images, 1 to 70 channels, NCHW- and
// channels-last-strided filters; both matrix-product libraries), the no-gradient path, the
// fallbacks (NCHW images, double, autocast, train.cpu_conv = "libtorch"), the setting's checks,
// which Conv2d layers take the path, and a ResNet-18 step either way.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "common/error.h"
#include "models/cpu_gemm.h"
#include "models/conv2d.h"
#include "models/flops.h"
#include "models/registry.h"
#include "models/winograd_conv.h"
#include "test_util.h"
#include "train/device.h"
#include "train/precision.h"

using namespace odyssey;
using odyssey::testing::error_of;
using odyssey::testing::GemmChoice;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

namespace {

constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

// Sets train.cpu_conv for one scope and restores "auto" (the unit tests' setting) after.
struct ConvChoice {
  explicit ConvChoice(const std::string& mode) { set_cpu_conv(mode, "test"); }
  ~ConvChoice() { set_cpu_conv("auto", "test"); }
};

struct Grads {
  torch::Tensor y, gx, gw;
};

// How many convolutions took Winograd's path while f ran (conv3x3 records each as an operator).
template <class F>
int winograd_calls(F f) {
  return odyssey::testing::recorded_calls("odyssey::conv2d_winograd", f);
}

Grads run(const torch::Tensor& x0, const torch::Tensor& w0, bool ours) {
  auto x = x0.clone(kChannelsLast).requires_grad_();
  auto w = w0.clone(torch::MemoryFormat::Preserve).requires_grad_();
  auto y = ours ? conv3x3(x, w) : torch::conv2d(x, w, {}, 1, 1);
  torch::manual_seed(3);
  y.backward(torch::randn(y.sizes(), torch::kDouble).to(y.scalar_type()));
  return {y.detach(), x.grad(), w.grad()};
}

void expect_matches_double(CpuGemm gemm) {
  GemmChoice g(gemm);
  ConvChoice c("winograd");
  struct Case {
    int64_t n, c, k, h, w;
    bool cl_filters;
  };
  const Case cases[] = {
      {4, 64, 64, 16, 16, true},  // ResNet-18 layer1 at 64 px
      {2, 16, 8, 9, 9, false},    // odd sides: the last tiles are cropped
      {3, 5, 7, 1, 1, false},     // one pixel: only the centre tap sees the image
      {1, 3, 70, 2, 7, true},     // one tile row, odd width
      {2, 1, 4, 5, 4, false},     // one input channel (the layouts coincide)
      {1, 70, 1, 6, 3, false},    // one filter
      {5, 24, 32, 56, 50, true},  // 1.4 MB of transforms per image: chunks of 2, 2 and 1 images
  };
  for (const auto& k : cases) {
    const std::string what = "n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " k" +
                             std::to_string(k.k) + " " + std::to_string(k.h) + "x" + std::to_string(k.w);
    torch::manual_seed(1);
    auto x = torch::randn({k.n, k.c, k.h, k.w}, torch::kDouble);
    auto w = torch::randn({k.k, k.c, 3, 3}, torch::kDouble) * 0.2;
    if (k.cl_filters) w = w.contiguous(kChannelsLast);
    const auto xf = x.to(torch::kFloat).contiguous(kChannelsLast);
    const auto wf = w.to(torch::kFloat);
    ASSERT_TRUE(winograd_conv_applies(xf, wf)) << what;
    const auto ref = run(x, w, /*ours=*/false);
    const auto got = run(xf, wf, /*ours=*/true);
    ASSERT_EQ(got.y.sizes(), ref.y.sizes()) << what;
    EXPECT_TRUE(got.y.is_contiguous(kChannelsLast)) << what;
    EXPECT_EQ(got.gw.strides(), wf.strides()) << what << ": the filter gradient keeps the filters' strides";
    EXPECT_LT(rel_err(got.y.to(torch::kDouble), ref.y), 2e-6) << what;
    EXPECT_LT(rel_err(got.gx.to(torch::kDouble), ref.gx), 2e-6) << what;
    EXPECT_LT(rel_err(got.gw.to(torch::kDouble), ref.gw), 2e-6) << what;
  }
}

}  // namespace

TEST(WinogradConv, MatchesLibTorchInDoublePrecisionWithOneDnnProducts) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  expect_matches_double(CpuGemm::kOneDnn);
}

TEST(WinogradConv, MatchesLibTorchInDoublePrecisionWithLibTorchProducts) {
  expect_matches_double(CpuGemm::kLibTorch);
}

TEST(WinogradConv, OnlyTheInputOrOnlyTheFilterNeedsAGradient) {
  ConvChoice c("winograd");
  torch::manual_seed(5);
  auto x = torch::randn({2, 8, 6, 6}).contiguous(kChannelsLast), w = torch::randn({4, 8, 3, 3});
  const auto both = run(x, w, true);
  auto xg = x.clone().requires_grad_();
  conv3x3(xg, w).backward(both.y * 0 + 1);
  auto wg = w.clone().requires_grad_();
  conv3x3(x, wg).backward(both.y * 0 + 1);
  auto x2 = x.clone().requires_grad_(), w2 = w.clone().requires_grad_();
  conv3x3(x2, w2).backward(both.y * 0 + 1);
  EXPECT_TRUE(torch::equal(xg.grad(), x2.grad()));
  EXPECT_TRUE(torch::equal(wg.grad(), w2.grad()));
}

TEST(WinogradConv, NoGradientForwardIsTheTrainingForward) {
  ConvChoice c("winograd");
  torch::manual_seed(2);
  auto x = torch::randn({3, 16, 7, 8}).contiguous(kChannelsLast), w = torch::randn({12, 16, 3, 3});
  const auto trained = conv3x3(x, w.requires_grad_());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(conv3x3(x, w), trained.detach()));
}

TEST(WinogradConv, FallsBackToLibTorchWhereItDoesNotApply) {
  torch::manual_seed(4);
  auto x = torch::randn({2, 8, 6, 6}), w = torch::randn({4, 8, 3, 3});
  ConvChoice c("winograd");
  EXPECT_FALSE(winograd_conv_applies(x, w)) << "NCHW images";
  EXPECT_TRUE(torch::equal(conv3x3(x, w), torch::conv2d(x, w, {}, 1, 1)));
  const auto xcl = x.contiguous(kChannelsLast);
  EXPECT_FALSE(winograd_conv_applies(xcl.to(torch::kDouble), w.to(torch::kDouble)));
  EXPECT_FALSE(winograd_conv_applies(xcl, torch::randn({4, 8, 5, 5})));
  {
    AutocastScope bf16("bf16", torch::kCPU);
    EXPECT_FALSE(winograd_conv_applies(xcl, w));
  }
  ConvChoice off("libtorch");
  EXPECT_FALSE(winograd_conv_applies(xcl, w));
  EXPECT_TRUE(torch::equal(conv3x3(xcl, w), torch::conv2d(xcl, w, {}, 1, 1)));
}

TEST(WinogradConv, CpuConvSettingIsChecked) {
  {
    ConvChoice c("libtorch");
    EXPECT_EQ(cpu_conv(), CpuConv::kLibTorch);
  }
  {
    ConvChoice c("winograd");
    EXPECT_EQ(cpu_conv(), CpuConv::kWinograd);
  }
  {
    GemmChoice g(CpuGemm::kLibTorch);
    EXPECT_EQ(cpu_conv(), CpuConv::kLibTorch) << "auto: Winograd only with oneDNN's products";
  }
  if (onednn_sgemm_available()) {
    GemmChoice g(CpuGemm::kOneDnn);
    EXPECT_EQ(cpu_conv(), CpuConv::kWinograd);
  }
  const auto msg = error_of([] { set_cpu_conv("fft", "cfg.toml: train.cpu_conv"); });
  EXPECT_NE(msg.find("cfg.toml: train.cpu_conv = \"fft\""), std::string::npos) << msg;
  EXPECT_EQ(cpu_conv_name(CpuConv::kWinograd), "Winograd F(2x2, 3x3)");
}

TEST(WinogradConv, OnlyPlain3x3LayersTakeThePath) {
  ConvChoice c("winograd");
  namespace nn = torch::nn;
  auto x = torch::randn({1, 16, 8, 8}).contiguous(kChannelsLast);
  const auto counted = [&](nn::Conv2d layer) {
    MacCounter counter;
    conv2d_forward(layer, x);
    return counter.count().total();
  };
  const nn::Conv2d plain(nn::Conv2dOptions(16, 6, 3).padding(1).bias(false));
  EXPECT_EQ(winograd_calls([&] { conv2d_forward(plain, x); }), 1);
  // The MAC counter sees Winograd's convolution as the direct one it replaces.
  EXPECT_EQ(counted(plain), 8 * 8 * 6 * 16 * 9);
  for (auto layer : {nn::Conv2d(nn::Conv2dOptions(16, 6, 3).padding(1).bias(true)),
                     nn::Conv2d(nn::Conv2dOptions(16, 6, 3).padding(1).stride(2).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(16, 6, 3).padding(0).bias(false)),
                     nn::Conv2d(nn::Conv2dOptions(16, 16, 3).padding(1).groups(2).bias(false))}) {
    torch::NoGradGuard no_grad;
    EXPECT_EQ(winograd_calls([&] { conv2d_forward(layer, x); }), 0) << layer;
    EXPECT_TRUE(torch::equal(conv2d_forward(layer, x), layer->forward(x))) << layer;
  }
  // A thin input (an RGB stem's 3 channels): LibTorch's convolution, though conv3x3 would apply.
  const nn::Conv2d thin(nn::Conv2dOptions(3, 6, 3).padding(1).bias(false));
  const auto rgb = torch::randn({1, 3, 8, 8}).contiguous(kChannelsLast);
  ASSERT_TRUE(winograd_conv_applies(rgb, thin->weight));
  EXPECT_EQ(winograd_calls([&] { conv2d_forward(thin, rgb); }), 0);
}

namespace {
// A model's loss and every parameter gradient agree either way, and the expected number of its
// 3x3 layers take Winograd (the wiring).
void trains_alike_either_way(const std::string& name, int64_t side, int winograd_layers) {
  const ModelOptions mo{10, 1, side};
  auto grads = [&](const std::string& mode) {
    ConvChoice c(mode);
    torch::manual_seed(0);
    auto model = ModelRegistry::instance().create(name, mo);
    to_channels_last(*model);
    model->train();
    torch::manual_seed(1);
    auto x = memory_order(torch::randn({4, 1, side, side}), true);
    torch::Tensor logits;
    EXPECT_EQ(winograd_calls([&] { logits = model->forward(x); }),
              mode == "winograd" ? winograd_layers : 0);
    auto loss = torch::nn::functional::cross_entropy(logits, torch::tensor({1, 2, 3, 4}));
    loss.backward();
    std::vector<torch::Tensor> out{loss.detach().reshape({1})};
    for (const auto& p : model->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  const auto a = grads("winograd"), b = grads("libtorch");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LT(rel_err(a[i].to(torch::kDouble), b[i].to(torch::kDouble)), 1e-3)
        << name << " tensor " << i;
}
}  // namespace

TEST(WinogradConv, ResNetTrainsAlikeEitherWay) {
  // Every 3x3 but the strided one opening stages 2-4: 4 in layer1, 3 in each later stage.
  trains_alike_either_way("resnet18", 32, 13);
}

TEST(WinogradConv, PlainConvNetsTrainAlikeEitherWay) {
  // Every layer but the first (1 input channel): the quickstart CNN's 32->64 and 64->128.
  trains_alike_either_way("fmnist_cnn", 28, 2);
  trains_alike_either_way("convnet", 32, 3);
}
