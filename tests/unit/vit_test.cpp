// The ViT's last block computes the class token alone (models/vit.cpp): logits and every
// parameter's gradient equal those of torchvision's computation (every token through every block,
// run under a ReferenceForward) in double precision, and to float rounding with the CPU's own
// kernels (training with drop path drawn, evaluation, batch 1, two tokens); drop path draws the
// same way both ways; the MAC count is torchvision's architecture, while the forward executes
// less.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <optional>

#include "../dist/dist_util.h"
#include "test_util.h"
#include "models/classifier.h"
#include "models/cpu_gemm.h"
#include "models/flops.h"
#include "models/meta_model.h"
#include "models/registry.h"

using namespace odyssey;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

namespace {

struct Pass {
  torch::Tensor logits;
  std::vector<torch::Tensor> grads;
};

// One forward and backward of a fresh model (seed fixed) on a fixed batch, every token through the
// last block or not, in training or evaluation mode.
Pass pass(const char* name, const ModelOptions& o, torch::Dtype dtype, bool reference, int64_t batch,
          bool train) {
  torch::manual_seed(9);
  auto model = ModelRegistry::instance().create(name, o);
  model->to(dtype);
  {  // the head starts at zero (torchvision), which would leave every other gradient zero
    torch::NoGradGuard g;
    for (auto& p : model->named_parameters())
      if (p.key() == "heads.head.weight") p.value().normal_(0, 0.1);
  }
  model->train(train);
  auto x = torch::randn({batch, o.in_channels, o.image_size, o.image_size}).to(dtype);
  auto y = torch::randint(0, o.num_classes, {batch}, torch::kLong);
  torch::manual_seed(10);  // drop path's draws
  Pass p;
  {
    std::optional<ReferenceForward> every_token;
    if (reference) every_token.emplace();
    p.logits = model->forward(x);
  }
  torch::nn::functional::cross_entropy(p.logits, y).backward();
  p.logits = p.logits.detach();
  for (auto& t : model->parameters()) p.grads.push_back(t.grad().to(torch::kDouble));
  return p;
}

void expect_alike(const Pass& a, const Pass& b, double tol, const std::string& what) {
  EXPECT_LT(rel_err(a.logits.to(torch::kDouble), b.logits.to(torch::kDouble)), tol) << what;
  ASSERT_EQ(a.grads.size(), b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i)
    EXPECT_LT(rel_err(a.grads[i], b.grads[i]), tol) << what << ": parameter " << i;
}

}  // namespace

TEST(Vit, ClassTokenLastBlockEqualsEveryToken) {
  struct Case {
    const char* name;
    ModelOptions options;
    int64_t batch = 5;
    bool train = true;
    const char* what = "";
  };
  const Case cases[] = {{"vit_mini4", {10, 1, 28}},
                        {"vit_mini4c", {7, 3, 32}},
                        {"vit_mini4", {10, 1, 28, /*dropout=*/0.0, /*sd=*/0.4}, 5, true, " drop path drawn"},
                        {"vit_mini4", {10, 1, 28, /*dropout=*/0.1, /*sd=*/0.4}, 5, false, " eval, dropout off"},
                        {"vit_mini4", {10, 1, 28}, 1, true, " batch 1"},
                        {"vit_mini4", {10, 1, 4}, 3, true, " 2 tokens"}};  // one patch and the class token
  // float: Odyssey's own CPU kernels (oneDNN products, attention node, LayerNorm) where this
  // process has oneDNN, else LibTorch's products and Odyssey's LayerNorm and GELU
  std::optional<odyssey::testing::GemmChoice> onednn;
  if (onednn_sgemm_available()) onednn.emplace(CpuGemm::kOneDnn);
  for (const auto& c : cases) {
    const std::string what = std::string(c.name) + c.what;
    for (const auto dtype : {torch::kDouble, torch::kFloat})
      expect_alike(pass(c.name, c.options, dtype, false, c.batch, c.train),
                   pass(c.name, c.options, dtype, true, c.batch, c.train), dtype == torch::kDouble ? 1e-12 : 1e-4,
                   what + (dtype == torch::kDouble ? " double" : " float"));
  }
}

TEST(Vit, MacsCountTheArchitectureWhileTheForwardExecutesLess) {
  // ViT-B/16 at 224 px: per block qkv 197*768*2304, attention 2 * 12*197*197*64, projection
  // 197*768*768, MLP 2 * 197*768*3072; patch embedding 196*768*768; head 768*1000. The last block
  // for the class token: k, v 197*768*1536, q 768*768, attention 2 * 12*197*64, projection
  // 768*768, MLP 2 * 768*3072.
  const int64_t block = 197LL * 768 * 2304 + 2LL * 12 * 197 * 197 * 64 + 197LL * 768 * 768 + 2LL * 197 * 768 * 3072;
  const int64_t last = 197LL * 768 * 1536 + 768LL * 768 + 2LL * 12 * 197 * 64 + 768LL * 768 + 2LL * 768 * 3072;
  const int64_t ends = 196LL * 768 * 768 + 768 * 1000;
  EXPECT_EQ(measure_model("vit_b16", {1000, 3, 224}).macs.total(), 12 * block + ends);
  auto meta = create_meta_model("vit_b16", {1000, 3, 224});
  meta->eval();
  c10::InferenceMode inference;
  auto x = torch::zeros({1, 3, 224, 224}, torch::TensorOptions().device(torch::kMeta));
  MacCounter counter;
  meta->forward(x);
  EXPECT_EQ(counter.count().total(), 11 * block + last + ends);  // 16.35 against 17.56 GMACs
}
