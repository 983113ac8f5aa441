// layer_norm() (models/layer_norm.h) against LibTorch's layer norm in double precision (output
// and the gradients of the input, weight and bias; contiguous and transposed inputs, rows of 1,
// 7, 192 and 768), the same bits at any thread count, the no-gradient path, frozen parameters,
// non-finite inputs, and the fallbacks to LibTorch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "models/layer_norm.h"
#include "../dist/dist_util.h"
#include "test_util.h"
#include "train/precision.h"

using namespace odyssey;
using odyssey::testing::rel_err;  // max |a - b| / max |b|
using odyssey::testing::with_threads;

namespace {

struct Grads {
  torch::Tensor y, gx, gw, gb;
};

torch::nn::LayerNorm make(int64_t d, torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(7);
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({d}).eps(1e-6));
  torch::NoGradGuard g;
  ln->weight.normal_(1.0, 0.3);
  ln->bias.normal_(0.0, 0.3);
  ln->to(dtype);
  return ln;
}

// layer_norm(x) (ours) or LibTorch's, backward with gy; x shaped [rows, d] is transposed first
// when `transpose` (a non-contiguous input).
Grads run(const torch::Tensor& x0, const torch::Tensor& gy, torch::nn::LayerNorm ln, bool ours,
          bool transpose = false) {
  auto x = x0.clone().requires_grad_();
  auto in = transpose ? x.transpose(0, 1) : x;
  ln->zero_grad();
  auto y = ours ? layer_norm(in, ln)
                : torch::layer_norm(in, ln->options.normalized_shape(), ln->weight, ln->bias, ln->options.eps());
  y.backward(gy);
  return {y.detach(), x.grad(), ln->weight.grad().clone(), ln->bias.grad().clone()};
}

torch::Tensor d(const torch::Tensor& t) { return t.to(torch::kDouble); }

}  // namespace

TEST(LayerNorm, MatchesLibTorchInDoublePrecision) {
  struct Case {
    int64_t rows, dim;
    bool transpose;
    double scale, shift;  // x = scale * normal + shift
    double tol;
  };
  // The last: a mean 300 standard deviations from zero, where a float mean alone is 1e-5 off in
  // standard deviations and E[x^2] - E[x]^2 would be 2e-3 off.
  const Case cases[] = {{3200, 192, false, 1, 0, 2e-6}, {130, 768, false, 3, 0, 2e-6},
                        {65, 7, false, 1, 0, 2e-6},      {9, 1, false, 1, 0, 2e-6},
                        {40, 24, true, 1, 0, 2e-6},      {300, 192, false, 0.01, 3, 1e-4}};
  for (const auto& c : cases) {
    const std::string what = std::to_string(c.rows) + " x " + std::to_string(c.dim) +
                             (c.transpose ? " transposed" : "") + " shift " + std::to_string(c.shift);
    torch::manual_seed(3);
    auto x = torch::randn({c.rows, c.dim}) * c.scale + c.shift;
    auto gy = torch::randn(c.transpose ? std::vector<int64_t>{c.dim, c.rows} : std::vector<int64_t>{c.rows, c.dim});
    auto ln = make(c.transpose ? c.rows : c.dim);
    ASSERT_TRUE(own_layer_norm_applies(c.transpose ? x.t() : x, ln)) << what;
    const auto ours = run(x, gy, ln, /*ours=*/true, c.transpose);
    auto ln64 = make(c.transpose ? c.rows : c.dim, torch::kDouble);
    const auto ref = run(d(x), d(gy), ln64, /*ours=*/false, c.transpose);
    ASSERT_EQ(ours.y.sizes(), ref.y.sizes()) << what;
    EXPECT_LT(rel_err(d(ours.y), ref.y), c.tol) << what;
    if (c.dim > 1) EXPECT_LT(rel_err(d(ours.gx), ref.gx), 10 * c.tol) << what;
    EXPECT_LT(rel_err(d(ours.gw), ref.gw), 10 * c.tol) << what;
    EXPECT_LT(rel_err(d(ours.gb), ref.gb), 10 * c.tol) << what;
  }
}

TEST(LayerNorm, SameBitsAtAnyThreadCount) {
  torch::manual_seed(4);
  auto x = torch::randn({1000, 192}), gy = torch::randn({1000, 192});
  auto ln = make(192);
  const auto one = with_threads(1, [&] { return run(x, gy, ln, true); });
  const auto two = with_threads(2, [&] { return run(x, gy, ln, true); });
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.gx, two.gx));
  EXPECT_TRUE(torch::equal(one.gw, two.gw));
  EXPECT_TRUE(torch::equal(one.gb, two.gb));
}

TEST(LayerNorm, ThreeDimensionalInputsNoGradientAndFrozenParameters) {
  torch::manual_seed(5);
  auto ln = make(24);
  auto x = torch::randn({4, 9, 24});
  auto y = layer_norm(x, ln);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(y.requires_grad());  // the parameters want gradients
  {
    torch::NoGradGuard g;
    auto z = layer_norm(x, ln);
    EXPECT_FALSE(z.requires_grad());
    EXPECT_TRUE(torch::equal(z, y.detach()));
  }
  // frozen parameters: the input's gradient alone
  ln->weight.set_requires_grad(false);
  ln->bias.set_requires_grad(false);
  auto xg = x.clone().requires_grad_();
  layer_norm(xg, ln).pow(2).sum().backward();
  auto xr = x.clone().requires_grad_();
  torch::layer_norm(xr, {24}, ln->weight, ln->bias, 1e-6).pow(2).sum().backward();
  EXPECT_LT(rel_err(xg.grad(), xr.grad()), 1e-5);
  EXPECT_FALSE(ln->weight.grad().defined());
}

TEST(LayerNorm, NonFiniteInputsSpoilTheirRowOnly) {
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  auto ln = make(4);
  auto x = torch::tensor({{1.0f, 2.0f, 3.0f, 4.0f}, {1.0f, nan, 3.0f, 4.0f}, {1.0f, 2.0f, inf, 4.0f}});
  auto ours = layer_norm(x, ln).detach(), lib = ln->forward(x).detach();
  EXPECT_LT(rel_err(ours[0], lib[0]), 1e-6);
  EXPECT_TRUE(torch::isnan(ours[1]).all().item<bool>());
  EXPECT_TRUE(torch::isnan(ours[2]).any().item<bool>());
}

TEST(LayerNorm, FallsBackToLibTorch) {
  auto x = torch::randn({5, 6});
  auto ln = make(6);
  EXPECT_FALSE(own_layer_norm_applies(x.to(torch::kDouble), make(6, torch::kDouble)));
  EXPECT_FALSE(own_layer_norm_applies(torch::empty({0, 6}), ln));
  torch::nn::LayerNorm two(torch::nn::LayerNormOptions({5, 6}));  // two normalised dimensions
  EXPECT_FALSE(own_layer_norm_applies(x, two));
  EXPECT_TRUE(torch::allclose(layer_norm(x, two), two->forward(x)));
  torch::nn::LayerNorm plain(torch::nn::LayerNormOptions({6}).elementwise_affine(false));
  EXPECT_FALSE(own_layer_norm_applies(x, plain));
  EXPECT_TRUE(torch::allclose(layer_norm(x, plain), plain->forward(x)));
  {
    AutocastScope bf16("bf16", torch::kCPU);
    EXPECT_FALSE(own_layer_norm_applies(x, ln));
  }
  EXPECT_EQ(layer_norm(torch::empty({0, 6}), ln).sizes(), (std::vector<int64_t>{0, 6}));
}
