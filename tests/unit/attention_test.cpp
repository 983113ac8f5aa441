// self_attention_core's oneDNN node against the plain LibTorch path in double precision (output
// and the gradient of the stacked q, k, v) over batch, token, width and head counts, the
// no-gradient path, and the fallbacks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "models/attention.h"
#include "models/cpu_gemm.h"
#include "test_util.h"
#include "train/precision.h"

using namespace odyssey;
using odyssey::testing::GemmChoice;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

TEST(Attention, OneDnnMatchesLibTorchInDoublePrecision) {
  if (!onednn_sgemm_available()) GTEST_SKIP() << "this process has no oneDNN sgemm";
  GemmChoice choice(CpuGemm::kOneDnn);
  if (!onednn_attention_applies(torch::randn({1, 1, 3})))
    GTEST_SKIP() << "LibTorch 2.x: scaled_dot_product_attention";
  struct Case {
    int64_t batch, tokens, dim, heads;
  };
  const Case cases[] = {{4, 50, 192, 3}, {3, 7, 12, 3}, {2, 1, 8, 2}, {2, 17, 24, 1}, {1, 5, 32, 8}};
  for (const auto& k : cases) {
    torch::manual_seed(11);
    auto qkv = torch::randn({k.batch, k.tokens, 3 * k.dim}, torch::kDouble);
    auto g = torch::randn({k.batch, k.tokens, k.dim}, torch::kDouble);
    auto ref_in = qkv.clone().requires_grad_();
    ASSERT_FALSE(onednn_attention_applies(ref_in));  // double: the plain path
    auto ref = self_attention_core(ref_in, k.heads);
    ref.backward(g);
    auto in = qkv.to(torch::kFloat).requires_grad_();
    ASSERT_TRUE(onednn_attention_applies(in));
    auto out = self_attention_core(in, k.heads);
    out.backward(g.to(torch::kFloat));
    const std::string what = "B" + std::to_string(k.batch) + " T" + std::to_string(k.tokens) +
                             " D" + std::to_string(k.dim) + " H" + std::to_string(k.heads);
    ASSERT_EQ(out.sizes(), ref.sizes()) << what;
    EXPECT_LT(rel_err(out.detach().to(torch::kDouble), ref.detach()), 1e-5) << what;
    EXPECT_LT(rel_err(in.grad().to(torch::kDouble), ref_in.grad()), 1e-5) << what;
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(self_attention_core(in, k.heads), out.detach())) << what;
  }
}

TEST(Attention, FallsBackToLibTorchWhereOneDnnDoesNotApply) {
  auto qkv = torch::randn({2, 5, 24});
  {
    GemmChoice choice(CpuGemm::kLibTorch);
    EXPECT_FALSE(onednn_attention_applies(qkv));
  }
  if (!onednn_sgemm_available()) return;
  GemmChoice choice(CpuGemm::kOneDnn);
  AutocastScope bf16("bf16", torch::kCPU);
  EXPECT_FALSE(onednn_attention_applies(qkv));
  EXPECT_THROW(self_attention_core(torch::randn({2, 5, 20}), 3), std::exception);  // 20 != 3 x 3 x hd
}
