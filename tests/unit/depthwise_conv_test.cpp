// depthwise_conv2d (Odyssey's filter-gradient kernels, LibTorch's forward and input gradient)
// against LibTorch's convolution in double precision over kernel sizes, strides, paddings and
// plane sizes (EfficientNet's, and edge cases where the filter is larger than the plane), both
// filter-gradient kernels and both memory orders, thread-count determinism, and the fallbacks
// (no gradient, other strides, double precision) that leave LibTorch in charge.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../dist/dist_util.h"
#include "models/depthwise_conv.h"
#include "test_util.h"

using namespace odyssey;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

namespace {

struct Case {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
};

struct Result {
  torch::Tensor y, gx, gw;
};

Result run(const Case& k, torch::ScalarType type, bool ours, bool channels_last = false) {
  torch::manual_seed(7);
  auto x = torch::randn({k.n, k.c, k.h, k.w}, torch::kDouble).to(type);
  if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  x.requires_grad_();
  auto w = torch::randn({k.c, 1, k.kh, k.kw}, torch::kDouble).to(type).requires_grad_();
  auto y = ours ? depthwise_conv2d(x, w, {k.sh, k.sw}, {k.ph, k.pw})
                : torch::conv2d(x, w, {}, {k.sh, k.sw}, {k.ph, k.pw}, 1, k.c);
  auto g = torch::randn(y.sizes(), torch::kDouble).to(type);
  y.backward(g);
  return {y.detach(), x.grad(), w.grad()};
}

}  // namespace

TEST(DepthwiseConv, MatchesLibTorchInDoublePrecision) {
  const Case cases[] = {
      {4, 6, 16, 16, 3, 3, 1, 1, 1, 1},  // EfficientNet 3x3
      {4, 6, 16, 16, 3, 3, 2, 2, 1, 1},  // strided 3x3 (LibTorch's slow input gradient)
      {4, 6, 8, 8, 5, 5, 1, 1, 2, 2},    // 5x5 (LibTorch's slow filter gradient)
      {4, 6, 9, 9, 5, 5, 2, 2, 2, 2},    // odd plane, strided 5x5
      {3, 5, 2, 2, 5, 5, 1, 1, 2, 2},    // filter larger than the plane
      {2, 3, 1, 1, 3, 3, 1, 1, 1, 1},    // 1x1 plane
      {2, 4, 7, 10, 3, 5, 2, 1, 1, 2},   // rectangular filter and plane, mixed strides
      {2, 4, 7, 7, 3, 3, 1, 1, 0, 0},    // no padding
      {3, 100, 4, 4, 5, 5, 1, 1, 2, 2},  // small planes, several channel blocks (channels-last kernel)
      {2, 70, 32, 32, 3, 3, 2, 2, 1, 1}, // large planes, strided (per-channel kernel)
  };
  for (const auto& k : cases) for (bool cl : {false, true}) {
    const auto ref = run(k, torch::kDouble, /*ours=*/false);
    const auto got = run(k, torch::kFloat, /*ours=*/true, cl);
    const std::string what = std::string(cl ? "NHWC " : "NCHW ") + "n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " " +
                             std::to_string(k.h) + "x" + std::to_string(k.w) + " k" +
                             std::to_string(k.kh) + "x" + std::to_string(k.kw) + " s" +
                             std::to_string(k.sh) + std::to_string(k.sw);
    ASSERT_EQ(got.y.sizes(), ref.y.sizes()) << what;
    EXPECT_LT(rel_err(got.y, ref.y), 1e-5) << what;
    EXPECT_LT(rel_err(got.gx, ref.gx), 1e-5) << what;
    EXPECT_LT(rel_err(got.gw, ref.gw), 1e-5) << what;
  }
}

TEST(DepthwiseConv, FilterGradientDoesNotDependOnTheThreadCount) {
  // Odyssey's kernels: 12x12 planes with 5x5 filters (per channel) and 4x4 planes over 3 channel
  // blocks (channels-last).
  for (const Case& k : {Case{8, 16, 12, 12, 5, 5, 1, 1, 2, 2}, Case{8, 150, 4, 4, 3, 3, 1, 1, 1, 1}}) {
    const auto one = odyssey::testing::with_threads(1, [&] { return run(k, torch::kFloat, true); });
    const auto two = odyssey::testing::with_threads(2, [&] { return run(k, torch::kFloat, true); });
    EXPECT_TRUE(torch::equal(one.gw, two.gw)) << k.c;
  }
}

TEST(DepthwiseConv, OnlyTheNeededGradientIsComputed) {
  auto x = torch::randn({2, 3, 6, 6});  // an input that needs no gradient (a first layer)
  auto w = torch::randn({3, 1, 3, 3}, torch::requires_grad());
  depthwise_conv2d(x, w, {1, 1}, {1, 1}).sum().backward();
  auto wr = w.detach().clone().requires_grad_();
  torch::conv2d(x, wr, {}, 1, 1, 1, 3).sum().backward();
  EXPECT_LT(rel_err(w.grad(), wr.grad().to(torch::kDouble)), 1e-5);
}

TEST(DepthwiseConv, FallsBackToLibTorchWhereItsKernelsDoNotApply) {
  auto x = torch::randn({2, 3, 6, 6});
  auto w = torch::randn({3, 1, 3, 3});
  EXPECT_TRUE(depthwise_kernels_apply(x, w));
  EXPECT_TRUE(depthwise_kernels_apply(x.contiguous(torch::MemoryFormat::ChannelsLast), w));
  EXPECT_FALSE(depthwise_kernels_apply(x.transpose(2, 3), w));  // neither order
  EXPECT_FALSE(depthwise_kernels_apply(x.to(torch::kDouble), w.to(torch::kDouble)));
  EXPECT_FALSE(depthwise_kernels_apply(x, torch::randn({3, 2, 3, 3})));  // not depthwise
  // A transposed input with gradients: LibTorch's path, same numbers.
  auto xl = x.transpose(2, 3).contiguous().transpose(2, 3).requires_grad_();
  auto wl = w.clone().requires_grad_();
  auto yl = depthwise_conv2d(xl, wl, {2, 2}, {1, 1});
  auto xr = x.clone().requires_grad_();
  auto wr = w.clone().requires_grad_();
  auto yr = depthwise_conv2d(xr, wr, {2, 2}, {1, 1});
  EXPECT_TRUE(torch::allclose(yl, yr, 1e-5, 1e-5));
  yl.sum().backward();
  yr.sum().backward();
  EXPECT_TRUE(torch::allclose(xl.grad(), xr.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(wl.grad(), wr.grad(), 1e-5, 1e-5));
}

TEST(DepthwiseConv, ModuleHasConv2dsParameterAndShape) {
  DepthwiseConv2d m(8, 5, 2, 2);
  auto params = m->named_parameters();
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0].key(), "weight");
  EXPECT_EQ(params[0].value().sizes(), (std::vector<int64_t>{8, 1, 5, 5}));
  EXPECT_EQ(m->forward(torch::randn({2, 8, 9, 9})).sizes(), (std::vector<int64_t>{2, 8, 5, 5}));
}
