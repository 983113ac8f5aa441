// self_attention_core's oneDNN node against the plain LibTorch path in double precision (output
// and the gradient of the stacked q, k, v) over batch, token, width and head counts, the
// no-gradient path, and the fallbacks; its softmax kernels against LibTorch's (large, NaN and
// infinite scores); single_query_attention against the full attention's class-token row.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "../dist/dist_util.h"
#include "models/attention.h"
#include "models/cpu_gemm.h"
#include "models/softmax_kernels.h"
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

TEST(Attention, SoftmaxKernelsMatchLibTorch) {
  torch::manual_seed(12);
  for (int64_t n : {1, 7, 16, 50, 197}) {
    auto s = torch::randn({33, n}) * 8;  // exp spans 1e-30 .. 1e30 within a row
    auto ref = torch::softmax(s.to(torch::kDouble), -1);
    auto p = s.clone();
    softmax_rows(p.data_ptr<float>(), n, 0, 33);
    EXPECT_LT(rel_err(p.to(torch::kDouble), ref), 1e-6) << n;
    auto g = torch::randn({33, n});
    auto ref_g = torch::_softmax_backward_data(g.to(torch::kDouble), ref, -1, torch::kDouble);
    auto ours_g = g.clone();
    softmax_backward_rows(ours_g.data_ptr<float>(), p.data_ptr<float>(), n, 0, 33);
    EXPECT_LT(rel_err(ours_g.to(torch::kDouble), ref_g), 1e-5) << n;
  }
  // Rows with NaN (first or later) or +inf, or only -inf, give NaN as LibTorch's; -inf (a mask)
  // and scores 88 or more below the maximum are exactly zero probabilities; huge values are fine.
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  auto s = torch::tensor({{1.0f, nan, 2.0f}, {nan, 1.0f, 2.0f}, {1.0f, inf, 2.0f}, {-inf, -inf, -inf},
                          {1.0f, -inf, 1.0f}, {1e30f, 1e30f, -1e30f}, {0.0f, -88.0f, 0.0f}, {2.0f, -inf, -inf}});
  auto p = s.clone();
  softmax_rows(p.data_ptr<float>(), 3, 0, s.size(0));
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(torch::isnan(torch::softmax(s[r], 0)).any().item<bool>()) << "row " << r;
    EXPECT_TRUE(torch::isnan(p[r]).any().item<bool>()) << "row " << r;
  }
  EXPECT_TRUE(torch::isnan(p[0]).all().item<bool>());
  const auto halves = torch::tensor({0.5f, 0.0f, 0.5f});
  EXPECT_TRUE(torch::equal(p[4], halves)) << p[4];
  EXPECT_TRUE(torch::equal(p[5], torch::tensor({0.5f, 0.5f, 0.0f}))) << p[5];
  EXPECT_TRUE(torch::equal(p[6], halves)) << p[6];  // exp(-88) = 6e-39: LibTorch's a subnormal
  EXPECT_TRUE(torch::equal(p[7], torch::tensor({1.0f, 0.0f, 0.0f}))) << p[7];  // a sum of 1: no flush
}

TEST(Attention, SingleQueryIsTheFullAttentionsFirstRow) {
  torch::manual_seed(13);
  const int64_t b = 3, t = 11, d = 12, heads = 3;
  auto qkv = torch::randn({b, t, 3 * d}, torch::kDouble);
  auto full = self_attention_core(qkv, heads).narrow(1, 0, 1);
  auto one = single_query_attention(qkv.narrow(1, 0, 1).narrow(2, 0, d), qkv.narrow(2, d, 2 * d), heads);
  ASSERT_EQ(one.sizes(), full.sizes());
  EXPECT_LT(rel_err(one, full), 1e-12);
  EXPECT_THROW(single_query_attention(torch::randn({3, 2, 12}), torch::randn({3, 11, 24}), 3), std::exception);
}
