// gelu() (models/gelu.h) against the exact GELU in double precision and against LibTorch's
// torch::gelu (forward and gradient; contiguous and transposed inputs, the tails, NaN and
// infinities), the fallbacks to LibTorch (double, autocast), and models/vector_math.h's
// FlushDenormals leaving the floating-point mode as it found it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "models/gelu.h"
#include "models/gelu_kernels.h"
#include "models/vector_math.h"

using namespace odyssey;

namespace {

struct Result {
  torch::Tensor y, gx;
};

Result run(const torch::Tensor& x0, const torch::Tensor& gy, bool ours, bool transpose = false) {
  auto x = x0.clone().requires_grad_();
  auto in = transpose ? x.transpose(0, 1) : x;
  auto y = ours ? odyssey::gelu(in) : torch::gelu(in);
  y.backward(gy);  // gy shaped as y
  return {y.detach(), x.grad()};
}

// max |a - b| / max(1, |x|), elementwise.
double scaled_err(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& x) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs() / x.to(torch::kDouble).abs().clamp_min(1.0))
      .max()
      .item<double>();
}

}  // namespace

TEST(Gelu, MatchesExactGeluInDoublePrecision) {
  torch::manual_seed(1);
  // normal activations, a dense sweep of [-14, 14] (both tails) and exact zeros
  const auto x = torch::cat({torch::randn({4096}) * 3, torch::linspace(-14, 14, 20001), torch::zeros({7})})
                     .view({-1, 1});
  ASSERT_TRUE(own_gelu_applies(x));
  const auto ones = torch::ones(x.sizes());  // the gradient is the derivative itself
  const auto got = run(x, ones, /*ours=*/true);
  const auto ref = run(x.to(torch::kDouble), ones.to(torch::kDouble), /*ours=*/false);  // erf in double
  EXPECT_LT(scaled_err(got.y, ref.y, x), 2e-7);
  EXPECT_LT(scaled_err(got.gx, ref.gx, x), 3e-7);
  // LibTorch's own float kernel agrees to the same rounding, with any incoming gradient
  const auto gy = torch::randn(x.sizes());
  const auto ours = run(x, gy, /*ours=*/true), lib = run(x, gy, /*ours=*/false);
  EXPECT_LT(scaled_err(ours.y, lib.y, x), 5e-7);
  EXPECT_LT(scaled_err(ours.gx, lib.gx, x * gy.abs().clamp_min(1.0)), 1e-6);
}

TEST(Gelu, TransposedInputAndShapeKept) {
  torch::manual_seed(2);
  const auto x = torch::randn({24, 50, 3});
  const auto gy = torch::randn({50, 24, 3});
  const auto got = run(x, gy, /*ours=*/true, /*transpose=*/true);
  const auto lib = run(x, gy, /*ours=*/false, /*transpose=*/true);
  EXPECT_EQ(got.y.sizes(), lib.y.sizes());
  EXPECT_LT(scaled_err(got.y, lib.y, x.transpose(0, 1)), 5e-7);
  EXPECT_LT(scaled_err(got.gx, lib.gx, x * 4), 1e-6);
}

TEST(Gelu, NonFiniteInputsAsLibTorch) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  const auto x = torch::tensor({nan, inf, -inf, 0.0f, -0.0f});
  const auto got = odyssey::gelu(x), lib = torch::gelu(x);
  EXPECT_TRUE(std::isnan(got[0].item<float>()));
  EXPECT_EQ(got[1].item<float>(), inf);
  EXPECT_EQ(std::isnan(got[2].item<float>()), std::isnan(lib[2].item<float>()));
  EXPECT_EQ(got[3].item<float>(), 0.0f);
  EXPECT_EQ(got[4].item<float>(), 0.0f);
  // a NaN gradient or input reaches the input's gradient (the non-finite step skip sees it)
  auto xs = torch::tensor({1.0f, nan}).requires_grad_();
  odyssey::gelu(xs).sum().backward();
  EXPECT_TRUE(std::isfinite(xs.grad()[0].item<float>()));
  EXPECT_TRUE(std::isnan(xs.grad()[1].item<float>()));
}

TEST(Gelu, NoGradientPathAndFallbacks) {
  torch::manual_seed(3);
  const auto x = torch::randn({64, 33});
  torch::Tensor a;
  {
    torch::NoGradGuard g;
    a = odyssey::gelu(x.clone().requires_grad_());
  }
  EXPECT_FALSE(a.requires_grad());
  EXPECT_TRUE(torch::equal(a, odyssey::gelu(x)));
  const auto xd = x.to(torch::kDouble);  // double: LibTorch's kernel, exactly
  EXPECT_FALSE(own_gelu_applies(xd));
  EXPECT_TRUE(torch::equal(odyssey::gelu(xd), torch::gelu(xd)));
  EXPECT_FALSE(own_gelu_applies(torch::empty({0})));
  EXPECT_EQ(odyssey::gelu(torch::empty({0, 4})).sizes(), (std::vector<int64_t>{0, 4}));
}

TEST(Gelu, FlushDenormalsRestoresTheFloatingPointMode) {
  volatile float tiny = 1e-30f;
  ASSERT_NE(tiny * 1e-10f, 0.0f);  // subnormal results exist here
  {
    const FlushDenormals ftz;
    volatile float t2 = 1e-30f;
    EXPECT_EQ(t2 * 1e-10f, 0.0f);  // flushed inside the scope (x86)
  }
  EXPECT_NE(tiny * 1e-10f, 0.0f);
  float in[2] = {-13.0f, 2.0f}, out[2];
  gelu_forward(in, out, 2);  // the kernels scope it themselves
  EXPECT_NE(tiny * 1e-10f, 0.0f);
  EXPECT_NEAR(out[1], 2.0f * 0.5f * (1.0f + std::erf(2.0f / std::sqrt(2.0f))), 1e-6);
}
