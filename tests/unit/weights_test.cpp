// Weight loading: strictness, head reset, and position-embedding resizing worked out by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/registry.h"
#include "models/weights.h"
#include "test_util.h"

using namespace odyssey;

namespace {
NamedTensors state(torch::nn::Module& m) {
  NamedTensors out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  for (auto& b : m.named_buffers()) out.emplace_back(b.key(), b.value().clone());
  return out;
}
}  // namespace

TEST(Weights, PosEmbeddingResizeKeepsClassTokenAndConstantGrids) {
  auto pos = torch::randn({1, 1 + 14 * 14, 8});
  EXPECT_TRUE(torch::allclose(resize_pos_embedding(pos, 1 + 14 * 14), pos, 1e-5, 1e-6));
  auto constant = torch::ones({1, 1 + 4 * 4, 3}) * torch::tensor({1.f, 2.f, 3.f});
  constant[0][0] = torch::tensor({7.f, 8.f, 9.f});
  auto r = resize_pos_embedding(constant, 1 + 6 * 6);
  ASSERT_EQ(r.sizes(), (std::vector<int64_t>{1, 37, 3}));
  EXPECT_TRUE(torch::equal(r[0][0], torch::tensor({7.f, 8.f, 9.f})));
  EXPECT_TRUE(torch::allclose(r[0].narrow(0, 1, 36), torch::tensor({1.f, 2.f, 3.f}).expand({36, 3})));
}

TEST(Weights, StrictLoadAndHeadReset) {
  auto& reg = ModelRegistry::instance();
  torch::manual_seed(1);
  auto src = reg.create("vit_ti4", {10, 1, 28});
  auto weights = state(*src);
  torch::manual_seed(2);
  auto dst = reg.create("vit_ti4", {10, 1, 28});
  load_weights(*dst, weights, false, "w.h5");
  auto got = state(*dst);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::equal(got[i].second, weights[i].second)) << got[i].first;

  auto other = reg.create("vit_ti4", {5, 1, 28});
  std::string e = odyssey::testing::error_of([&] { load_weights(*other, weights, false, "w.h5"); });
  EXPECT_NE(e.find("dataset /model/heads.head.weight in 'w.h5' has shape [10, 192], the model expects [5, 192]"),
            std::string::npos) << e;
  EXPECT_NE(e.find("model.reset_head"), std::string::npos) << e;
  load_weights(*other, weights, /*reset_head=*/true, "w.h5");

  // A bigger image: position embeddings are resized, everything else loads as is.
  auto bigger = reg.create("vit_ti4", {10, 1, 36});
  load_weights(*bigger, weights, false, "w.h5");

  NamedTensors partial(weights.begin() + 1, weights.end());
  e = odyssey::testing::error_of([&] { load_weights(*dst, partial, false, "w.h5"); });
  EXPECT_NE(e.find("lack dataset /model/" + weights[0].first), std::string::npos) << e;
  auto extra = weights;
  extra.emplace_back("unexpected.weight", torch::zeros({1}));
  e = odyssey::testing::error_of([&] { load_weights(*dst, extra, false, "w.h5"); });
  EXPECT_NE(e.find("hold 1 datasets the model does not have"), std::string::npos) << e;
}

TEST(Weights, TorchvisionOldMlpNamesLoad) {
  // torchvision <= 0.13's ViT state dicts: encoder.layers.*.mlp.linear_1/linear_2 for mlp.0/mlp.3.
  auto& reg = ModelRegistry::instance();
  torch::manual_seed(3);
  auto src = reg.create("vit_ti4", {10, 1, 28});
  NamedTensors old;
  for (auto [name, t] : state(*src)) {
    for (auto [from, to] : {std::pair<std::string, std::string>{".mlp.0.", ".mlp.linear_1."},
                            std::pair<std::string, std::string>{".mlp.3.", ".mlp.linear_2."}})
      if (auto at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
    old.emplace_back(name, t);
  }
  int renamed = 0;
  for (const auto& [name, t] : old) renamed += name.find(".mlp.linear_") != std::string::npos;
  EXPECT_EQ(renamed, 4 * 6);  // 6 blocks, two layers, weight and bias
  torch::manual_seed(4);
  auto dst = reg.create("vit_ti4", {10, 1, 28});
  load_weights(*dst, old, false, "old.h5");
  auto want = state(*src), got = state(*dst);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::equal(got[i].second, want[i].second)) << got[i].first;
}
