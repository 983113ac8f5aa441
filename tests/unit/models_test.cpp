// Model registry: every model builds, runs forward and backward with the right shapes; unknown
// names list the known ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <tuple>

#include "config/config.h"
#include "models/batch_norm.h"
#include "models/registry.h"
#include "train/device.h"
#include "test_util.h"

using namespace odyssey;

TEST(Models, EveryRegisteredModelRunsForwardAndBackward) {
  // The largest (hundreds of MB of weights) are covered by the torchvision comparison in
  // tests/e2e/test_model_zoo.sh; here every other model runs at a small image size.
  const std::set<std::string> large = {"efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
                                       "vit_l16", "vit_l32", "vit_h14"};
  for (const auto& e : ModelRegistry::instance().entries()) {
    if (large.count(e.name)) continue;
    const int64_t size = std::min<int64_t>(e.default_image_size, 32);
    for (int64_t channels : {1, 3}) {
      auto m = e.create({7, channels, size});
      auto x = torch::randn({2, channels, size, size});
      auto y = m->forward(x);
      EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7})) << e.name;
      y.sum().backward();
      for (auto& p : m->parameters()) EXPECT_TRUE(p.grad().defined()) << e.name;
    }
  }
}

TEST(Models, QuickstartModelLayoutIsTheSeedDesign) {
  auto m = ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28});
  std::vector<std::string> names;
  for (auto& p : m->named_parameters()) names.push_back(p.key());
  // Conv (no bias, followed by BN) - BN - ReLU - MaxPool per stage, then the linear head.
  EXPECT_EQ(names.front(), "features.0.weight");
  EXPECT_EQ(names[1], "features.1.weight");
  EXPECT_EQ(names[2], "features.1.bias");
  EXPECT_EQ(names.back(), "classifier.bias");
  // 32-64-128 widths: convs 9*(1*32 + 32*64 + 64*128), BN 2*(32+64+128), head 128*3*3*10 + 10.
  EXPECT_EQ(count_parameters(*m), 9 * (32 + 32 * 64 + 64 * 128) + 2 * (32 + 64 + 128) + 1152 * 10 + 10);
}

TEST(Models, UnknownNameListsKnownOnes) {
  std::string e = odyssey::testing::error_of([] { ModelRegistry::instance().create("resnet9000", {}); });
  EXPECT_NE(e.find("unknown model 'resnet9000'"), std::string::npos) << e;
  EXPECT_NE(e.find("fmnist_cnn"), std::string::npos) << e;
  EXPECT_NE(e.find("tiny_cnn"), std::string::npos) << e;
}

TEST(Models, DuplicateNamesAreRefused) {
  auto entry = ModelRegistry::instance().find("tiny_cnn");
  EXPECT_THROW(ModelRegistry::instance().add(entry), std::exception);
}

namespace {

namespace nn = torch::nn;

// The dropout probability of the module at `path` (e.g. "classifier.0").
double dropout_p(Classifier& m, const std::string& path) {
  for (const auto& item : m.named_modules())
    if (item.key() == path) return item.value()->as<nn::Dropout>()->options.p();
  ADD_FAILURE() << "no module " << path;
  return -1;
}

// Train mode, but BatchNorm normalises with its running statistics and does not update them:
// only dropout and stochastic depth can make train differ from eval.
void train_with_frozen_batchnorm(Classifier& m) {
  m.train();
  for (auto& sub : m.modules(/*include_self=*/false))
    if (sub->as<odyssey::BatchNorm2d>()) sub->eval();
}

// torchvision zero-initialises a ViT's head, so its logits are all zero until trained: random
// head weights, zero bias (so that the logits scale with the features).
void randomise_head(Classifier& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) {
    if (p.key().rfind(m.head_prefix(), 0) != 0) continue;
    if (p.value().dim() == 2) p.value().normal_(0, 0.1);
    else p.value().zero_();
  }
}

// a and b differ by more than rounding, relative to a's scale (a freshly initialised
// EfficientNet's logits are ~1e-12).
bool differ(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() > 1e-4 * a.abs().max().item<double>();
}

}  // namespace

TEST(Models, DropoutDefaultsAreTorchvisionsAndOptionsOverrideThem) {
  auto& r = ModelRegistry::instance();
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("efficientnet_b0", {10, 3, 32}), "classifier.0"), 0.2);
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("efficientnet_b3", {10, 3, 32}), "classifier.0"), 0.3);
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("efficientnet_b0", {10, 3, 32, /*dropout=*/0.35}), "classifier.0"), 0.35);
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("efficientnet_b0", {10, 3, 32, /*dropout=*/0.0}), "classifier.0"), 0.0);
  // ViT: torchvision's dropout sits in each MLP (mlp.2, mlp.4); default 0.
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("vit_ti4", {10, 1, 28}), "encoder.layers.encoder_layer_0.mlp.2"), 0.0);
  EXPECT_DOUBLE_EQ(dropout_p(*r.create("vit_ti4", {10, 1, 28, 0.1}), "encoder.layers.encoder_layer_5.mlp.4"), 0.1);
}

TEST(Models, EfficientNetBatchNormIsTorchvisions) {
  // torchvision: b0-b4 nn.BatchNorm2d's defaults, b5-b7 eps 1e-3 and momentum 0.01 (not in a
  // state dict: no weights test would notice).
  auto& r = ModelRegistry::instance();
  const std::tuple<const char*, double, double> variants[] = {
      {"efficientnet_b0", 1e-5, 0.1}, {"efficientnet_b4", 1e-5, 0.1}, {"efficientnet_b5", 1e-3, 0.01},
      {"efficientnet_b7", 1e-3, 0.01}};
  for (const auto& [name, eps, momentum] : variants) {
    int64_t norms = 0;
    for (const auto& m : r.create(name, {10, 3, 32})->modules(/*include_self=*/false))
      if (const auto* bn = m->as<BatchNorm2dImpl>()) {
        ++norms;
        ASSERT_DOUBLE_EQ(bn->options.eps(), eps) << name;
        ASSERT_TRUE(bn->options.momentum().has_value()) << name;
        ASSERT_DOUBLE_EQ(*bn->options.momentum(), momentum) << name;
      }
    EXPECT_GT(norms, 40) << name;
  }
}

TEST(Models, ConfigKeysReachTheModel) {
  Config c = parse_config("[model]\nname = \"efficientnet_s\"\ndropout = 0.3\nstochastic_depth = 0.05\n", "m.toml");
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.3);
  EXPECT_DOUBLE_EQ(c.model.stochastic_depth, 0.05);
  EXPECT_DOUBLE_EQ(Config().model.dropout, -1.0);  // -1: the architecture's default
  EXPECT_DOUBLE_EQ(Config().model.stochastic_depth, -1.0);
  EXPECT_NE(odyssey::testing::error_of([] { parse_config("[model]\ndropout = 1.5\n", "m.toml"); })
                .find("model.dropout"),
            std::string::npos);
  EXPECT_NE(odyssey::testing::error_of([] { parse_config("[model]\nstochastic_depth = -2\n", "m.toml"); })
                .find("model.stochastic_depth"),
            std::string::npos);
}

TEST(Models, StochasticDepthZeroTrainsExactlyAsItEvaluates) {
  // efficientnet_s with dropout and stochastic depth 0, BatchNorm frozen: train mode computes
  // exactly the eval forward (every block's branch kept, nothing rescaled).
  torch::manual_seed(1);
  auto m = ModelRegistry::instance().create("efficientnet_s", {10, 3, 32, /*dropout=*/0.0, /*sd=*/0.0});
  auto x = torch::randn({4, 3, 32, 32});
  torch::NoGradGuard no_grad;
  m->eval();
  auto eval = m->forward(x);
  train_with_frozen_batchnorm(*m);
  EXPECT_TRUE(torch::equal(m->forward(x), eval));
  // ViTs default to no dropout and no drop path (torchvision's ViT has neither): train = eval.
  auto vit = ModelRegistry::instance().create("vit_ti4", {10, 1, 28});
  randomise_head(*vit);
  auto y = torch::randn({4, 1, 28, 28});
  vit->eval();
  auto vit_eval = vit->forward(y);
  vit->train();
  EXPECT_TRUE(torch::equal(vit->forward(y), vit_eval));
}

TEST(Models, DropoutAndStochasticDepthAreRandomInTrainingOnly) {
  torch::NoGradGuard no_grad;
  struct Case {
    const char* name;
    ModelOptions options;
  };
  const Case cases[] = {
      {"efficientnet_s", {10, 3, 32, /*dropout=*/0.0, /*sd=*/0.5}},  // stochastic depth alone
      {"efficientnet_s", {10, 3, 32, /*dropout=*/0.5, /*sd=*/0.0}},  // dropout alone
      {"vit_ti4", {10, 1, 28, /*dropout=*/0.0, /*sd=*/0.5}},         // DeiT drop path alone
      {"vit_ti4", {10, 1, 28, /*dropout=*/0.3, /*sd=*/0.0}},         // dropout alone
  };
  for (const auto& c : cases) {
    torch::manual_seed(2);
    auto m = ModelRegistry::instance().create(c.name, c.options);
    const int64_t ch = c.options.in_channels, s = c.options.image_size;
    auto x = torch::randn({8, ch, s, s});
    randomise_head(*m);
    m->eval();
    auto e1 = m->forward(x), e2 = m->forward(x);
    EXPECT_TRUE(torch::equal(e1, e2)) << c.name << ": eval must be deterministic";
    train_with_frozen_batchnorm(*m);
    torch::manual_seed(3);
    auto t1 = m->forward(x);
    torch::manual_seed(4);
    auto t2 = m->forward(x);
    EXPECT_TRUE(differ(t1, t2)) << c.name << ": train mode must draw";
    EXPECT_TRUE(differ(t1, e1)) << c.name << ": train mode must differ from eval";
    torch::manual_seed(3);
    EXPECT_TRUE(torch::equal(m->forward(x), t1)) << c.name << ": the draw follows the generator";
  }
}

TEST(Models, StochasticDepthOnAPlainCnnIsAnError) {
  std::string e = odyssey::testing::error_of(
      [] { ModelRegistry::instance().create("fmnist_cnn", {10, 1, 28, -1, /*sd=*/0.1}); });
  EXPECT_NE(e.find("model.stochastic_depth"), std::string::npos) << e;
}

TEST(Models, FeaturesAreWhatTheHeadReads) {
  torch::NoGradGuard no_grad;
  for (const char* name : {"efficientnet_s", "vit_ti4", "vit_mini4c", "resnet18", "fmnist_cnn", "convnet"}) {
    auto m = ModelRegistry::instance().create(name, {7, 3, 32});
    m->eval();
    auto x = torch::randn({2, 3, 32, 32});
    randomise_head(*m);
    auto f = m->features(x);
    ASSERT_EQ(f.dim(), 2) << name;
    torch::Tensor w, b;
    for (auto& p : m->named_parameters()) {
      if (p.key().rfind(m->head_prefix(), 0) != 0) continue;
      (p.value().dim() == 2 ? w : b) = p.value();
    }
    EXPECT_TRUE(torch::allclose(m->forward(x), torch::nn::functional::linear(f, w, b), 1e-5, 1e-5)) << name;
  }
}

TEST(Models, ResNetsHaveTorchvisionsParameterCounts) {
  // torchvision's model docs: resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032.
  auto& r = ModelRegistry::instance();
  EXPECT_EQ(count_parameters(*r.create("resnet18", {1000, 3, 224})), 11689512);
  EXPECT_EQ(count_parameters(*r.create("resnet34", {1000, 3, 224})), 21797672);
  EXPECT_EQ(count_parameters(*r.create("resnet50", {1000, 3, 224})), 25557032);
  auto m = r.create("resnet50", {1000, 3, 224});
  std::set<std::string> names;
  for (auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* k : {"conv1.weight", "bn1.weight", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
                        "layer4.2.bn3.bias", "fc.weight"})
    EXPECT_TRUE(names.count(k)) << k;
}

TEST(Models, ConvStemViTHasTorchvisionsLayout) {
  auto m = ModelRegistry::instance().create("vit_mini4c", {10, 1, 28});
  std::set<std::string> names;
  for (auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* k : {"conv_proj.conv_bn_relu_0.0.weight", "conv_proj.conv_bn_relu_2.1.bias",
                        "conv_proj.conv_last.weight", "conv_proj.conv_last.bias", "class_token"})
    EXPECT_TRUE(names.count(k)) << k;
  EXPECT_FALSE(names.count("conv_proj.weight"));
  // The stem's strides (1, 2, 2) give 7 x 7 tokens at 28 px, as a 4 x 4 patchify would.
  auto f = m->features(torch::randn({2, 1, 28, 28}));
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, 96}));
}

TEST(Models, ChannelsLastKeepsTheTensorsAndTheResults) {
  torch::NoGradGuard no_grad;
  for (const char* name : {"efficientnet_s", "resnet18"}) {
    torch::manual_seed(5);
    auto m = ModelRegistry::instance().create(name, {10, 3, 32});
    randomise_head(*m);
    m->eval();
    auto x = torch::randn({2, 3, 32, 32});
    auto before = m->forward(x);
    std::vector<const void*> ids;
    for (auto& p : m->parameters()) ids.push_back(p.unsafeGetTensorImpl());
    to_channels_last(*m);
    size_t i = 0, nhwc = 0;
    for (auto& p : m->parameters()) {
      EXPECT_EQ(p.unsafeGetTensorImpl(), ids[i++]) << name << ": same parameter objects";
      if (p.dim() == 4 && p.size(1) > 1 && p.size(2) * p.size(3) > 1)
        nhwc += p.is_contiguous(torch::MemoryFormat::ChannelsLast) && !p.is_contiguous();
    }
    EXPECT_GT(nhwc, 0u) << name;
    auto after = m->forward(memory_order(x, true));
    EXPECT_TRUE(torch::allclose(after, before, 1e-4, 1e-5)) << name << " " << (after - before).abs().max();
  }
}

TEST(Models, NchwBatchesGetNchwStridesSoConvolutionsStayNchw) {
  // A 1-channel batch permuted from NHWC pixels counts as contiguous with channels-last strides;
  // a convolution then answers channels-last, and so would the whole network.
  auto nhwc = torch::rand({4, 28, 28, 1}).permute({0, 3, 1, 2});
  ASSERT_TRUE(nhwc.is_contiguous());
  auto w = torch::randn({8, 1, 3, 3});
  EXPECT_FALSE(torch::conv2d(nhwc, w).is_contiguous());
  auto x = memory_order(nhwc, /*channels_last=*/false);
  EXPECT_EQ(x.strides(), (std::vector<int64_t>{784, 784, 28, 1}));
  EXPECT_TRUE(torch::equal(x, nhwc));
  EXPECT_TRUE(torch::conv2d(x, w).is_contiguous());
  EXPECT_TRUE(memory_order(nhwc, true).is_contiguous(torch::MemoryFormat::ChannelsLast));
}

TEST(Models, ChannelsLastBatchesGetChannelsLastStridesSoConvolutionsRunNhwc) {
  // The other way round: a fresh 1-channel batch has NCHW strides, which .contiguous(ChannelsLast)
  // keeps (it is contiguous in both orders), so the network would run NCHW.
  auto nchw = torch::rand({4, 1, 28, 28});
  ASSERT_TRUE(nchw.is_contiguous(torch::MemoryFormat::ChannelsLast));
  auto w = torch::randn({8, 1, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(torch::conv2d(nchw.contiguous(torch::MemoryFormat::ChannelsLast), w).is_contiguous());
  auto x = memory_order(nchw, /*channels_last=*/true);
  EXPECT_EQ(x.strides(), (std::vector<int64_t>{784, 1, 28, 1}));
  EXPECT_TRUE(torch::equal(x, nchw));
  auto y = torch::conv2d(x, w);
  EXPECT_TRUE(y.is_contiguous(torch::MemoryFormat::ChannelsLast) && !y.is_contiguous());
  auto rgb = torch::rand({2, 3, 5, 5});  // unambiguous: as contiguous(ChannelsLast)
  EXPECT_EQ(memory_order(rgb, true).strides(), (std::vector<int64_t>{75, 1, 15, 3}));
}

TEST(Models, Tf32SettingReachesCudnnAndCublas) {
  // train.tf32: LibTorch's process-wide flags, read by cuDNN and cuBLAS calls (settable and
  // readable without a GPU). LibTorch's default allows TF32 for cuDNN only.
  auto& ctx = at::globalContext();
  const bool cudnn = ctx.allowTF32CuDNN(), cublas = ctx.allowTF32CuBLAS();
  set_tf32(true);
  EXPECT_TRUE(ctx.allowTF32CuDNN() && ctx.allowTF32CuBLAS());
  set_tf32(false);
  EXPECT_FALSE(ctx.allowTF32CuDNN() || ctx.allowTF32CuBLAS());
  ctx.setAllowTF32CuDNN(cudnn);
  ctx.setAllowTF32CuBLAS(cublas);
}
