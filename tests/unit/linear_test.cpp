// linear() through oneDNN's sgemm against LibTorch's linear in double precision (forward, input,
// weight and bias gradients; 2-D, 3-D and non-contiguous inputs), the no-gradient path, the
// fallbacks to LibTorch (double, autocast, train.cpu_gemm = "libtorch"), train.cpu_gemm's
// checks, and a whole ViT trained one step either way.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "common/error.h"
#include "models/cpu_gemm.h"
#include "models/linear.h"
#include "models/registry.h"
#include "test_util.h"
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
  auto x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(), b = b0.clone().requires_grad_();
  auto in = transpose_input ? x.transpose(0, 1) : x;  // a non-contiguous view
  auto y = ours ? linear(in, w, b) : torch::linear(in, w, b);
  torch::manual_seed(3);
  y.backward(torch::randn(y.sizes(), torch::kDouble).to(y.scalar_type()));
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

}  // namespace

TEST(Linear, OneDnnMatchesLibTorchInDoublePrecision) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  struct Case {
    std::vector<int64_t> x;
    int64_t out;
    bool transpose;
  };
  const Case cases[] = {
      {{8, 50, 192}, 576, false},  // ViT-Ti qkv projection
      {{8, 50, 768}, 192, false},  // MLP fc2
      {{37, 13}, 29, false},       // odd sizes, 2-D
      {{5, 1}, 3, false},          // contraction of length 1
      {{50, 8, 64}, 96, true},     // transposed (non-contiguous) input
  };
  for (const auto& k : cases) {
    torch::manual_seed(1);
    auto x = torch::randn(k.x, torch::kDouble);
    auto w = torch::randn({k.out, k.x.back()}, torch::kDouble) * 0.1;
    auto b = torch::randn({k.out}, torch::kDouble);
    ASSERT_TRUE(onednn_linear_applies(x.to(torch::kFloat), w.to(torch::kFloat), b.to(torch::kFloat)));
    const auto ref = run(x, w, b, /*ours=*/false, k.transpose);
    const auto got = run(x.to(torch::kFloat), w.to(torch::kFloat), b.to(torch::kFloat), /*ours=*/true, k.transpose);
    const std::string what = "x " + c10::str(k.x) + " -> " + std::to_string(k.out);
    ASSERT_EQ(got.y.sizes(), ref.y.sizes()) << what;
    EXPECT_LT(rel_err(got.y.to(torch::kDouble), ref.y), 1e-5) << what;
    EXPECT_LT(rel_err(got.gx.to(torch::kDouble), ref.gx), 1e-5) << what;
    EXPECT_LT(rel_err(got.gw.to(torch::kDouble), ref.gw), 1e-5) << what;
    EXPECT_LT(rel_err(got.gb.to(torch::kDouble), ref.gb), 1e-5) << what;
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
  EXPECT_FALSE(onednn_linear_applies(x, w, torch::Tensor()));
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
