// Model registry: every model builds, runs forward and backward with the right shapes; unknown
// names list the known ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "models/registry.h"
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
