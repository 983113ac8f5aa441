// bn_relu_pool (fused BatchNorm, ReLU and 2x2 max-pool on channels-last CPU floats) and bn_silu
// (BatchNorm and SiLU) against
// LibTorch's three operators in double precision: output, input/weight/bias gradients, running
// statistics and batch count, in training and evaluation mode, even and odd sizes (the dropped
// last row/column), 1-70 channels, negative BatchNorm weights, tied window values; the result is
// the same bits at any thread count; NaN passes as in LibTorch; the fallbacks; and ConvNet's
// training step (three fused stages) against the same model in NCHW, which takes LibTorch's path;
// bn_silu likewise, over large values too (its exp), and an EfficientNet step either way.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "../dist/dist_util.h"
#include "models/batch_norm.h"
#include "models/batch_norm_fused.h"
#include "models/registry.h"
#include "test_util.h"
#include "train/device.h"

using namespace odyssey;
using odyssey::testing::rel_err;  // max |a - b| / max |b|

namespace {

constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

struct Result {
  torch::Tensor y, gx, gw, gb, running_mean, running_var, batches;
};

// A layer with random affine parameters (some weights negative) and running statistics.
BatchNorm2d make_layer(int64_t c, bool training) {
  BatchNorm2d bn(c);
  torch::NoGradGuard no_grad;
  bn->weight.copy_(torch::randn({c}));
  bn->bias.copy_(torch::randn({c}) * 0.5);
  bn->running_mean.copy_(torch::randn({c}) * 0.1);
  bn->running_var.copy_(torch::rand({c}) + 0.5);
  bn->train(training);
  return bn;
}

// Values on a 0.5 grid: windows hold ties, and equal values stay equal after normalising.
torch::Tensor grid_input(std::vector<int64_t> shape) {
  return (torch::randn(shape) * 4).round() / 2;
}

// The fused path (ours) or LibTorch's operators in double precision on a copy of the layer;
// BatchNorm-ReLU-MaxPool, or BatchNorm-SiLU (silu).
Result run(const torch::Tensor& x0, const BatchNorm2d& layer, const torch::Tensor& gy, bool ours,
           bool silu = false) {
  auto bn = std::dynamic_pointer_cast<BatchNorm2dImpl>(layer->clone());
  if (!ours) bn->to(torch::kDouble);
  auto x = (ours ? x0.clone(kChannelsLast) : x0.to(torch::kDouble)).requires_grad_();
  torch::Tensor y;
  if (silu)
    y = ours ? bn_silu(x, *bn) : torch::silu(bn->forward(x));
  else
    y = ours ? bn_relu_pool(x, *bn) : torch::max_pool2d(torch::relu(bn->forward(x)), 2);
  y.backward(gy.to(y.scalar_type()));
  auto dbl = [](const torch::Tensor& t) { return t.to(torch::kDouble); };
  return {dbl(y.detach()), dbl(x.grad()), dbl(bn->weight.grad()), dbl(bn->bias.grad()),
          dbl(bn->running_mean), dbl(bn->running_var), bn->num_batches_tracked.clone()};
}

void expect_close(const Result& a, const Result& b, double tol) {
  EXPECT_LT(rel_err(a.y, b.y), tol);
  EXPECT_LT(rel_err(a.gx, b.gx), tol);
  EXPECT_LT(rel_err(a.gw, b.gw), tol);
  EXPECT_LT(rel_err(a.gb, b.gb), tol);
  EXPECT_LT(rel_err(a.running_mean, b.running_mean), tol);
  EXPECT_LT(rel_err(a.running_var, b.running_var), tol);
  EXPECT_TRUE(torch::equal(a.batches, b.batches));
}

// One training step of the same model (same initial weights, batch and random draws) in NCHW,
// which takes LibTorch's operators, and in channels-last, counting the calls of operator `op`.
struct TwinSteps {
  std::shared_ptr<Classifier> nchw, nhwc;
  int calls_nchw = 0, calls_nhwc = 0;
};

TwinSteps twin_steps(const std::string& model, const ModelOptions& mo, int64_t batch,
                     const char* op) {
  auto make = [&] {
    torch::manual_seed(4);
    auto m = ModelRegistry::instance().create(model, mo);
    m->train();
    return m;
  };
  TwinSteps t{make(), make()};
  to_channels_last(*t.nhwc);
  torch::manual_seed(5);
  const auto x = torch::randn({batch, mo.in_channels, mo.image_size, mo.image_size});
  const auto labels = torch::randint(0, mo.num_classes, {batch});
  for (bool cl : {false, true}) {
    auto& m = cl ? t.nhwc : t.nchw;
    torch::manual_seed(6);  // the same stochastic-depth draws
    (cl ? t.calls_nhwc : t.calls_nchw) = odyssey::testing::recorded_calls(op, [&] {
      torch::nn::functional::cross_entropy(m->forward(memory_order(x, cl)), labels).backward();
    });
  }
  return t;
}

}  // namespace

TEST(BnReluPool, MatchesLibTorchInTrainingAndEvaluation) {
  const std::vector<std::vector<int64_t>> shapes = {
      {4, 32, 28, 28}, {3, 17, 7, 7}, {2, 5, 6, 9}, {1, 1, 2, 2}, {5, 70, 3, 3}, {2, 3, 5, 4}};
  int64_t zeros = 0;
  for (bool training : {true, false})
    for (const auto& s : shapes) {
      SCOPED_TRACE(::testing::Message() << (training ? "training " : "eval ") << s);
      torch::manual_seed(s[1] * 7 + s[2]);
      const auto x = grid_input(s);
      const auto layer = make_layer(s[1], training);
      const auto gy = torch::randn({s[0], s[1], s[2] / 2, s[3] / 2});
      const auto ours = run(x, layer, gy, true);
      EXPECT_TRUE(bn_relu_pool_fused(x.contiguous(kChannelsLast), *layer));
      expect_close(ours, run(x, layer, gy, false), 2e-5);
      zeros += (ours.y == 0).sum().item<int64_t>();
    }
  // Many window maxima are ReLU's zeros: their windows get no gradient beyond the statistics'
  // share (nothing at all in evaluation mode).
  EXPECT_GT(zeros, 1000);
}

TEST(BnReluPool, SameBitsAtAnyThreadCountAndWithoutGradients) {
  torch::manual_seed(1);
  const auto x = torch::randn({16, 24, 14, 14});
  const auto layer = make_layer(24, true);
  const auto gy = torch::randn({16, 24, 7, 7});
  const auto one = odyssey::testing::with_threads(1, [&] { return run(x, layer, gy, true); });
  const auto two = odyssey::testing::with_threads(2, [&] { return run(x, layer, gy, true); });
  EXPECT_TRUE(torch::equal(one.y, two.y));
  EXPECT_TRUE(torch::equal(one.gx, two.gx));
  EXPECT_TRUE(torch::equal(one.gw, two.gw));
  EXPECT_TRUE(torch::equal(one.running_var, two.running_var));
  // Without gradients: the same output and the same update of the running statistics.
  auto bn = std::dynamic_pointer_cast<BatchNorm2dImpl>(layer->clone());
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = bn_relu_pool(x.contiguous(kChannelsLast), *bn);
  }
  EXPECT_TRUE(torch::equal(y.to(torch::kDouble), one.y));
  EXPECT_TRUE(torch::equal(bn->running_mean.to(torch::kDouble), one.running_mean));
  EXPECT_TRUE(torch::equal(bn->num_batches_tracked, one.batches));
}

TEST(BnReluPool, NaNPassesAsInLibTorch) {
  torch::manual_seed(2);
  auto x = torch::randn({2, 3, 4, 4});
  x[1][2][1][2] = std::numeric_limits<float>::quiet_NaN();
  auto layer = make_layer(3, false);
  {  // the NaN is its window's maximum and gets the gradient, a finite one (evaluation)
    const auto gy = torch::randn({2, 3, 2, 2});
    const auto a = run(x, layer, gy, true), b = run(x, layer, gy, false);
    EXPECT_TRUE(torch::equal(torch::isnan(a.gx), torch::isnan(b.gx)));
    EXPECT_LT(rel_err(a.gx, b.gx), 2e-5);
  }
  torch::NoGradGuard no_grad;
  const auto ours = bn_relu_pool(x.contiguous(kChannelsLast), *layer);
  const auto ref = torch::max_pool2d(torch::relu(layer->forward(x)), 2);
  EXPECT_TRUE(torch::isnan(ours[1][2][0][1]).item<bool>());
  EXPECT_TRUE(torch::allclose(ours, ref, 1e-5, 1e-6, /*equal_nan=*/true));
  EXPECT_EQ(torch::isnan(ours).sum().item<int64_t>(), 1);
}

TEST(BnReluPool, FallsBackToLibTorch) {
  torch::manual_seed(3);
  const auto layer = make_layer(8, true);
  const auto x = torch::randn({2, 8, 6, 6});
  EXPECT_FALSE(bn_relu_pool_fused(x, *layer));                                 // NCHW
  EXPECT_FALSE(bn_relu_pool_fused(x.to(torch::kDouble).contiguous(kChannelsLast), *layer));
  EXPECT_FALSE(bn_relu_pool_fused(torch::randn({2, 8, 1, 5}).contiguous(kChannelsLast), *layer));
  // A fallback computes the same thing: NCHW through LibTorch against channels-last fused.
  const auto gy = torch::randn({2, 8, 3, 3});
  auto lib_bn = std::dynamic_pointer_cast<BatchNorm2dImpl>(layer->clone());
  auto xl = x.clone().requires_grad_();
  auto yl = bn_relu_pool(xl, *lib_bn);
  yl.backward(gy);
  const auto ours = run(x, layer, gy, true);
  EXPECT_LT(rel_err(yl.to(torch::kDouble), ours.y), 1e-5);
  EXPECT_LT(rel_err(xl.grad().to(torch::kDouble), ours.gx), 1e-4);
  EXPECT_TRUE(torch::equal(lib_bn->num_batches_tracked, ours.batches));
}

// ConvNet's stages take the fused path in channels-last: a training step matches the same model in
// NCHW (LibTorch's operators), and each forward runs three fused stages.
TEST(BnReluPool, ConvNetStepMatchesNchw) {
  const auto t = twin_steps("fmnist_cnn", {10, 1, 28}, 8, "odyssey::bn_relu_pool");
  EXPECT_EQ(t.calls_nchw, 0);
  EXPECT_EQ(t.calls_nhwc, 3);
  const auto &a = t.nchw, &b = t.nhwc;
  const auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) {
    SCOPED_TRACE(p.key());
    EXPECT_LT(rel_err(pb[p.key()].grad(), p.value().grad()), 1e-3);
  }
  for (const auto& buf : a->named_buffers())
    if (buf.value().is_floating_point()) {
      SCOPED_TRACE(buf.key());
      EXPECT_LT(rel_err(b->named_buffers()[buf.key()], buf.value()), 1e-4);
    }
}

// No momentum (the cumulative average) counts batches as LibTorch does; a gradient for the weight
// alone; evaluation with gradients reads a copy of the running mean, so a later training forward
// of the same layer does not change that graph's backward; no second derivative.
TEST(BnReluPool, CumulativeAverageEvalGraphsAndNoDoubleBackward) {
  torch::manual_seed(6);
  BatchNorm2d layer(torch::nn::BatchNormOptions(6).momentum(c10::nullopt));
  auto ref = std::dynamic_pointer_cast<BatchNorm2dImpl>(layer->clone());
  ref->to(torch::kDouble);
  for (int step = 0; step < 3; ++step) {
    const auto x = torch::randn({3, 6, 6, 6}) + step;
    torch::NoGradGuard no_grad;
    bn_relu_pool(x.contiguous(kChannelsLast), *layer);
    torch::max_pool2d(torch::relu(ref->forward(x.to(torch::kDouble))), 2);
  }
  EXPECT_EQ(layer->num_batches_tracked.item<int64_t>(), 3);
  EXPECT_LT(rel_err(layer->running_mean.to(torch::kDouble), ref->running_mean), 1e-6);
  EXPECT_LT(rel_err(layer->running_var.to(torch::kDouble), ref->running_var), 1e-6);

  const auto x = torch::randn({2, 6, 4, 4}).contiguous(kChannelsLast);
  layer->eval();
  auto y = bn_relu_pool(x, *layer);  // the weight needs a gradient, x does not
  const auto expected = torch::autograd::grad({y.sum()}, {layer->weight}, {}, true)[0].clone();
  layer->train();
  bn_relu_pool(x + 5, *layer);  // moves the running statistics
  EXPECT_TRUE(torch::equal(torch::autograd::grad({y.sum()}, {layer->weight})[0], expected));

  auto xg = x.clone().requires_grad_();
  auto z = bn_relu_pool(xg, *layer).pow(2).sum();
  EXPECT_THROW(torch::autograd::grad({z}, {xg}, {}, true, /*create_graph=*/true), std::exception);
  EXPECT_TRUE(torch::autograd::grad({z}, {xg})[0].defined());  // a plain backward works
}

TEST(BnSilu, MatchesLibTorchInTrainingAndEvaluation) {
  const std::vector<std::vector<int64_t>> shapes = {
      {4, 32, 16, 16}, {3, 17, 7, 7}, {2, 5, 6, 9}, {1, 1, 1, 1}, {5, 70, 3, 3}};
  for (bool training : {true, false})
    for (const auto& s : shapes) {
      if (training && s[0] * s[2] * s[3] == 1) continue;  // one value per channel: no variance
      SCOPED_TRACE(::testing::Message() << (training ? "training " : "eval ") << s);
      torch::manual_seed(s[1] * 5 + s[2]);
      // Normalised values up to about +-60: SiLU's tails and exp's range.
      const auto x = torch::randn(s) * (1 + 15 * torch::rand({1, s[1], 1, 1}));
      auto layer = make_layer(s[1], training);
      {
        torch::NoGradGuard no_grad;
        layer->weight.mul_(4);
      }
      const auto gy = torch::randn(s);
      EXPECT_TRUE(bn_silu_fused(x.contiguous(kChannelsLast), *layer));
      expect_close(run(x, layer, gy, true, true), run(x, layer, gy, false, true), 2e-5);
    }
}

// EfficientNet's BatchNorm-SiLU pairs take the fused path in channels-last: a training step
// matches the same model in NCHW (LibTorch's operators).
TEST(BnSilu, EfficientNetStepMatchesNchw) {
  const auto t = twin_steps("efficientnet_s", {10, 3, 32}, 4, "odyssey::bn_silu");
  EXPECT_EQ(t.calls_nchw, 0);
  EXPECT_GT(t.calls_nhwc, 10);
  const auto &a = t.nchw, &b = t.nhwc;
  // Relative to the largest gradient of the whole model: the biases of the BatchNorms before a
  // convolution and another BatchNorm get only rounding noise (the next BatchNorm removes any
  // per-channel shift), against which a per-tensor ratio is meaningless.
  double largest = 0;
  for (const auto& p : a->parameters()) largest = std::max(largest, p.grad().abs().max().item<double>());
  const auto pb = b->named_parameters();
  for (const auto& p : a->named_parameters()) {
    SCOPED_TRACE(p.key());
    const double err = (pb[p.key()].grad() - p.value().grad()).abs().max().item<double>();
    EXPECT_LT(err, 1e-4 * largest);
  }
}

// Normalised values far outside exp's float range (|z| up to ~500): SiLU is z or 0 there, its
// derivative 1 or 0, with no overflow to infinity or NaN.
TEST(BnSilu, SaturatesBeyondExpRange) {
  torch::manual_seed(8);
  const auto x = torch::randn({2, 4, 5, 5}) * 3;
  auto layer = make_layer(4, false);
  {
    torch::NoGradGuard no_grad;
    layer->weight.fill_(50);
  }
  const auto gy = torch::randn({2, 4, 5, 5});
  const auto ours = run(x, layer, gy, true, true);
  EXPECT_TRUE(torch::isfinite(ours.y).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(ours.gx).all().item<bool>());
  expect_close(ours, run(x, layer, gy, false, true), 2e-5);
}
