// FLOP counter: single layers against MACs worked out by hand, no double counting of operators
// inside operators, the model totals against torchvision's published numbers, and the meta-device
// measurement against a real forward on the CPU.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "common/error.h"
#include "models/flops.h"
#include "models/meta_model.h"
#include "models/registry.h"

using namespace odyssey;
namespace nn = torch::nn;

namespace {

// MACs of f() by operator kind.
template <typename F>
MacCount count(F&& f) {
  torch::NoGradGuard no_grad;
  MacCounter counter;
  f();
  return counter.count();
}

}  // namespace

TEST(Flops, Conv2dByHand) {
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1));
  // Output 8 x 10 x 10 = 800 values, each 3 x 3 x 3 = 27 MACs.
  auto c = count([&] { conv->forward(torch::randn({1, 3, 10, 10})); });
  EXPECT_EQ(c.total(), 800 * 27);
  EXPECT_EQ(c.by_kind.at("conv"), 800 * 27);
  // Stride 2 and batch 2: 2 x 16 x 16 x 16 outputs x 27.
  nn::Conv2d strided(nn::Conv2dOptions(3, 16, 3).stride(2).padding(1).bias(false));
  EXPECT_EQ(count([&] { strided->forward(torch::randn({2, 3, 32, 32})); }).total(), 2 * 16 * 16 * 16 * 27);
}

TEST(Flops, DepthwiseAndGroupedConvByHand) {
  // Depthwise 5x5 over 8 channels at 12x12, stride 1: 8 x 12 x 12 outputs x 25 MACs.
  nn::Conv2d dw(nn::Conv2dOptions(8, 8, 5).padding(2).groups(8).bias(false));
  EXPECT_EQ(count([&] { dw->forward(torch::randn({1, 8, 12, 12})); }).total(), 8 * 12 * 12 * 25);
  // 8 -> 16 in 4 groups: each output reads 2 input channels x 9 taps.
  nn::Conv2d grouped(nn::Conv2dOptions(8, 16, 3).padding(1).groups(4));
  EXPECT_EQ(count([&] { grouped->forward(torch::randn({1, 8, 6, 6})); }).total(), 16 * 6 * 6 * 2 * 9);
  // Transposed: every input value is spread over out/groups channels x kernel taps.
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(4, 6, 2).stride(2));
  EXPECT_EQ(count([&] { up->forward(torch::randn({1, 4, 5, 5})); }).total(), 4 * 5 * 5 * 6 * 4);
}

TEST(Flops, LinearAndMatmulByHand) {
  nn::Linear lin(20, 30);
  auto c = count([&] { lin->forward(torch::randn({4, 20})); });
  EXPECT_EQ(c.total(), 4 * 30 * 20);
  EXPECT_EQ(c.by_kind.size(), 1u);
  EXPECT_EQ(c.by_kind.at("matmul"), 4 * 30 * 20);
  EXPECT_EQ(count([&] { lin->forward(torch::randn({2, 5, 20})); }).total(), 2 * 5 * 30 * 20);
  // aten::linear counts once, not again for the matmul/mm it runs on.
  auto w = torch::randn({30, 20});
  EXPECT_EQ(count([&] { torch::linear(torch::randn({2, 5, 20}), w); }).total(), 2 * 5 * 30 * 20);
  // Batched attention-style products: [2, 3, 4, 5] x [2, 3, 5, 6] = 2 x 3 x 4 x 6 outputs x 5.
  auto a = torch::randn({2, 3, 4, 5}), b = torch::randn({2, 3, 5, 6});
  EXPECT_EQ(count([&] { torch::matmul(a, b); }).by_kind.at("matmul"), 2 * 3 * 4 * 6 * 5);
  EXPECT_EQ(count([&] { torch::bmm(a.view({6, 4, 5}), b.view({6, 5, 6})); }).total(), 6 * 4 * 6 * 5);
  EXPECT_EQ(count([&] { torch::addmm(torch::zeros({7}), torch::randn({3, 9}), torch::randn({9, 7})); }).total(),
            3 * 7 * 9);
}

TEST(Flops, ElementwiseNormsAndPoolsCountZero) {
  auto x = torch::randn({1, 4, 8, 8});
  nn::BatchNorm2d bn(4);
  bn->eval();
  auto c = count([&] {
    auto y = torch::silu(bn->forward(x)) * torch::sigmoid(x.mean({2, 3}, true));
    torch::max_pool2d(y, 2).softmax(1);
  });
  EXPECT_EQ(c.total(), 0);
}

TEST(Flops, OneCounterPerThreadAndNothingCountedAfterwards) {
  nn::Linear lin(3, 2);
  {
    MacCounter outer;
    EXPECT_THROW(MacCounter inner, std::exception);
  }
  MacCount before;
  {
    MacCounter c;
    lin->forward(torch::randn({1, 3}));
    before = c.count();
  }
  EXPECT_EQ(before.total(), 6);
  lin->forward(torch::randn({1, 3}));  // no counter alive: must not crash or count anywhere
}

TEST(Flops, TorchvisionModelTotals) {
  // torchvision's published GFLOPS (multiply-accumulates): efficientnet_b0 0.39, vit_b_16 17.56;
  // exact counts with python3-torchvision 0.14: 0.386 and 17.564 (vit_b_16 at 384: 55.48).
  const double b0 = measure_model("efficientnet_b0", {1000, 3, 224}).macs.giga();
  EXPECT_NEAR(b0, 0.386, 0.02 * 0.386) << b0;
  const double vit = measure_model("vit_b16", {1000, 3, 224}).macs.giga();
  EXPECT_NEAR(vit, 17.564, 0.02 * 17.564) << vit;
  const double vit384 = measure_model("vit_b16", {1000, 3, 384}).macs.giga();
  EXPECT_NEAR(vit384, 55.48, 0.02 * 55.48) << vit384;
  // ViT-B/16 by hand: per block qkv 197*768*2304, attention 2 * 12*197*197*64, projection
  // 197*768*768, MLP 2 * 197*768*3072; patch embedding 196*768*768; head 768*1000.
  const int64_t block = 197LL * 768 * 2304 + 2LL * 12 * 197 * 197 * 64 + 197LL * 768 * 768 + 2LL * 197 * 768 * 3072;
  EXPECT_EQ(measure_model("vit_b16", {1000, 3, 224}).macs.total(), 12 * block + 196LL * 768 * 768 + 768 * 1000);
}

TEST(Flops, MetaDeviceMeasuresWhatTheCpuForwardCounts) {
  struct Case {
    const char* name;
    ModelOptions options;
  };
  const Case cases[] = {{"efficientnet_s", {10, 3, 32}}, {"efficientnet_b0", {10, 3, 64}},
                        {"vit_ti4", {10, 1, 28}},        {"fmnist_cnn", {10, 1, 28}},
                        {"convnet", {10, 3, 64}},        {"tiny_cnn", {10, 1, 28}}};
  for (const auto& c : cases) {
    const ModelCost meta = measure_model(c.name, c.options);
    EXPECT_TRUE(meta.meta) << c.name << " fell back to the CPU";
    auto model = ModelRegistry::instance().create(c.name, c.options);
    const MacCount cpu = count_forward_macs(*model, c.options.in_channels, c.options.image_size);
    EXPECT_GT(cpu.total(), 0) << c.name;
    EXPECT_EQ(meta.macs.by_kind, cpu.by_kind) << c.name;
    EXPECT_EQ(meta.parameters, count_parameters(*model)) << c.name;
  }
}

TEST(Flops, NonSquareInputsCountWhereTheModelTakesThemAndAreAnErrorWhereNot) {
  // Global pooling takes any height x width: the count lies between the two squares'.
  const int64_t wide = measure_model("convnet", {10, 3, 32}, 24, 32).macs.total();
  EXPECT_GT(wide, measure_model("convnet", {10, 3, 24}).macs.total());
  EXPECT_LT(wide, measure_model("convnet", {10, 3, 32}).macs.total());
  // A fixed classifier input (fmnist_cnn) and a position embedding (ViT) do not: one Error
  // naming the model, both sizes and what to set.
  for (const char* name : {"fmnist_cnn", "vit_ti4"}) {
    try {
      measure_model(name, {10, 1, 32}, 24, 32);
      ADD_FAILURE() << name << " took a 24x32 input";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("model ") + name + ", built for 32x32 px, cannot take a 24x32 input"),
                std::string::npos) << what;
      EXPECT_NE(what.find("augment.image_size"), std::string::npos) << what;
    }
  }
}

TEST(Flops, TheSmallestMapABatchNormNormalisesIsNoted) {
  // fmnist_cnn: Conv-BN-ReLU-MaxPool at 28, 14 and 7; efficientnet_b0 at 32 px ends at 1x1 (stride
  // 32); a ViT has LayerNorms only.
  EXPECT_EQ(measure_model("fmnist_cnn", {10, 1, 28}).macs.batch_norm_min_plane, 49);
  EXPECT_EQ(measure_model("efficientnet_b0", {10, 3, 32}).macs.batch_norm_min_plane, 1);
  EXPECT_EQ(measure_model("efficientnet_b0", {10, 3, 64}).macs.batch_norm_min_plane, 4);
  EXPECT_EQ(measure_model("vit_ti4", {10, 1, 28}).macs.batch_norm_min_plane, 0);
}

TEST(Flops, MetaModelHasTheShapesAndLeavesTheCpuAlone) {
  auto meta = create_meta_model("efficientnet_b0", {10, 3, 224});
  auto real = ModelRegistry::instance().create("efficientnet_b0", {10, 3, 224});
  auto a = meta->named_parameters(), b = real->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key(), b[i].key());
    EXPECT_EQ(a[i].value().sizes(), b[i].value().sizes()) << a[i].key();
    EXPECT_TRUE(a[i].value().is_meta()) << a[i].key();
  }
  for (auto& buffer : meta->named_buffers())  // but num_batches_tracked (torch::tensor(0))
    EXPECT_TRUE(buffer.value().is_meta() || buffer.value().dim() == 0) << buffer.key();
  // Tensors made after it are ordinary CPU tensors with values.
  auto t = torch::ones({3});
  EXPECT_EQ(t.device().type(), torch::kCPU);
  EXPECT_EQ(t.sum().item<float>(), 3.0f);
  EXPECT_EQ(torch::relu(torch::full({2}, -1.0)).sum().item<float>(), 0.0f);
}

TEST(Flops, BackwardProductsByHand) {
  // Counted in a forward with autograd on: each operand that needs a gradient costs the product
  // once more; nothing in inference mode.
  auto backward = [](auto&& f) {
    MacCounter counter;
    f();
    return counter.count().backward;
  };
  nn::Conv2d conv(nn::Conv2dOptions(3, 8, 3).padding(1));
  const int64_t f = 800 * 27;  // 8 x 10 x 10 outputs x 27
  auto x = torch::randn({1, 3, 10, 10});
  EXPECT_EQ(backward([&] { conv->forward(x); }), f);  // the weight's gradient only
  EXPECT_EQ(backward([&] { conv->forward(x.clone().requires_grad_()); }), 2 * f);
  EXPECT_EQ(count([&] { conv->forward(x); }).backward, 0);
  conv->weight.set_requires_grad(false);
  conv->bias.set_requires_grad(false);
  EXPECT_EQ(backward([&] { conv->forward(x); }), 0);
  nn::Linear lin(20, 30);
  EXPECT_EQ(backward([&] { lin->forward(torch::randn({4, 20})); }), 4 * 30 * 20);
  lin->weight.set_requires_grad(false);
  EXPECT_EQ(backward([&] { lin->forward(torch::randn({4, 20}).requires_grad_()); }), 4 * 30 * 20);
  auto a = torch::randn({2, 3, 4, 5}).requires_grad_(), b = torch::randn({2, 3, 5, 6}).requires_grad_();
  EXPECT_EQ(backward([&] { torch::matmul(a, b); }), 2 * (2 * 3 * 4 * 6 * 5));
  // addmm's bias (first) is no factor: one factor needing a gradient, one product.
  auto bias = torch::zeros({7}).requires_grad_();
  EXPECT_EQ(backward([&] { torch::addmm(bias, torch::randn({3, 9}), torch::randn({9, 7}).requires_grad_()); }),
            3 * 7 * 9);
}

TEST(Flops, BackwardShareOfFrozenLayers) {
  // fmnist_cnn at 28 px, 3 channels: convolutions 3->32 at 28x28, 32->64 at 14x14, 64->128 at 7x7,
  // a head 1152 -> 1000. Trained whole, backward computes every weight gradient and every input
  // gradient but the image's; features.0 frozen, the second convolution's input needs none either;
  // a linear probe leaves the head's weight gradient alone.
  const double c0 = 32.0 * 28 * 28 * 27, c1 = 64.0 * 14 * 14 * 288, c2 = 128.0 * 7 * 7 * 576, head = 1152.0 * 1000;
  const double full = c0 + 2 * c1 + 2 * c2 + 2 * head;
  const ModelOptions o{1000, 3, 28};
  EXPECT_EQ(backward_share("fmnist_cnn", o, 28, 28, {}), 1.0);
  const std::vector<std::string> first = {"features.0.weight", "features.1.weight", "features.1.bias"};
  EXPECT_DOUBLE_EQ(backward_share("fmnist_cnn", o, 28, 28, first), (c1 + 2 * c2 + 2 * head) / full);
  std::vector<std::string> all_but_head;
  for (auto& p : ModelRegistry::instance().create("fmnist_cnn", o)->named_parameters())
    if (p.key().rfind("classifier.", 0) != 0) all_but_head.push_back(p.key());
  EXPECT_DOUBLE_EQ(backward_share("fmnist_cnn", o, 28, 28, all_but_head), head / full);
  // A ViT (attention's q, k, v all need gradients): whole, 2 x the forward less the patch
  // embedding's input gradient; a linear probe, the head's weight gradient.
  const ModelOptions vo{10, 1, 28};
  const MacCount vit = measure_model("vit_ti4", vo).macs;
  std::vector<std::string> vit_body;
  int64_t head_macs = 0;
  for (auto& p : ModelRegistry::instance().create("vit_ti4", vo)->named_parameters()) {
    if (p.key() == "heads.head.weight") head_macs = p.value().numel();  // one class token x [10, D]
    if (p.key().rfind("heads.", 0) != 0) vit_body.push_back(p.key());
  }
  ASSERT_GT(head_macs, 0);
  const double vit_full = 2.0 * static_cast<double>(vit.total()) - static_cast<double>(vit.by_kind.at("conv"));
  EXPECT_DOUBLE_EQ(backward_share("vit_ti4", vo, 28, 28, vit_body), static_cast<double>(head_macs) / vit_full);
}
