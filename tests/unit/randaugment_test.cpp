// RandAugment's ops checked by hand or against a plain-loop version of PIL's algorithm, its
// determinism; the input size and the evaluation resize + centre crop.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "data/augment.h"
#include "data/augment_ops.h"

using namespace odyssey;

namespace {

torch::Tensor from_levels(const std::vector<int>& v, int64_t h, int64_t w) {
  return torch::tensor(v, torch::kFloat).div(255).view({1, 1, h, w});
}
std::vector<int> to_levels(const torch::Tensor& x) {
  auto l = (x * 255).round().to(torch::kInt).contiguous();
  return std::vector<int>(l.data_ptr<int>(), l.data_ptr<int>() + l.numel());
}
torch::Tensor mags(std::vector<double> v) { return torch::tensor(v, torch::kDouble); }

// PIL's ImageOps.equalize (as torchvision's _scale_channel), one channel, plain loops.
std::vector<int> equalize_reference(const std::vector<int>& v) {
  std::vector<int64_t> hist(256, 0);
  for (int x : v) ++hist[x];
  int top = *std::max_element(v.begin(), v.end());
  int64_t step = (static_cast<int64_t>(v.size()) - hist[top]) / 255;
  if (step == 0) return v;
  std::vector<int64_t> lut(256, 0);
  int64_t cum = 0;
  for (int i = 0; i < 255; ++i) {
    cum += hist[i];
    lut[i + 1] = std::min<int64_t>(255, (cum + step / 2) / step);
  }
  std::vector<int> out;
  for (int x : v) out.push_back(static_cast<int>(lut[x]));
  return out;
}

}  // namespace

TEST(RandAugment, MagnitudesFollowTorchvisionsBins) {
  EXPECT_NEAR(rand_op_magnitude(RandOp::kShearX, 9, 32, 32), 0.09, 1e-12);
  EXPECT_NEAR(rand_op_magnitude(RandOp::kRotate, 9, 32, 32), 9.0, 1e-12);
  EXPECT_NEAR(rand_op_magnitude(RandOp::kBrightness, 30, 32, 32), 0.9, 1e-12);
  EXPECT_EQ(rand_op_magnitude(RandOp::kTranslateX, 9, 32, 40), 5);  // int(150/331 * 40 * 0.3)
  EXPECT_EQ(rand_op_magnitude(RandOp::kTranslateY, 9, 32, 40), 4);
  EXPECT_EQ(rand_op_magnitude(RandOp::kPosterize, 0, 32, 32), 8);
  EXPECT_EQ(rand_op_magnitude(RandOp::kPosterize, 9, 32, 32), 7);
  EXPECT_EQ(rand_op_magnitude(RandOp::kPosterize, 30, 32, 32), 4);
  EXPECT_NEAR(rand_op_magnitude(RandOp::kSolarize, 10, 32, 32), 170.0, 1e-9);
  EXPECT_TRUE(rand_op_signed(RandOp::kContrast));
  EXPECT_FALSE(rand_op_signed(RandOp::kSolarize));
}

TEST(RandAugment, PixelOpsByHand) {
  auto x = from_levels({0, 100, 171, 255}, 2, 2);
  EXPECT_EQ(to_levels(apply_rand_op(x, RandOp::kPosterize, mags({4}))),
            (std::vector<int>{0, 96, 160, 240}));
  EXPECT_EQ(to_levels(apply_rand_op(x, RandOp::kSolarize, mags({171}))),
            (std::vector<int>{0, 100, 84, 0}));
  EXPECT_EQ(to_levels(apply_rand_op(x, RandOp::kBrightness, mags({-0.5}))),
            (std::vector<int>{0, 50, 86, 128}));  // 171 / 2 = 85.5 -> 86 (clamped blend)
  EXPECT_EQ(to_levels(apply_rand_op(x, RandOp::kBrightness, mags({0.5}))),
            (std::vector<int>{0, 150, 255, 255}));
  // Contrast 1 + m about the mean level (131.5): factor 0 gives the mean everywhere.
  EXPECT_EQ(to_levels(apply_rand_op(x, RandOp::kContrast, mags({-1}))),
            (std::vector<int>{132, 132, 132, 132}));
  auto narrow = from_levels({51, 153, 77, 153}, 2, 2);  // 0.2 .. 0.6 -> 0 .. 1
  EXPECT_EQ(to_levels(autocontrast(narrow)), (std::vector<int>{0, 255, 65, 255}));
  auto flat = torch::full({1, 1, 2, 2}, 0.4f);
  EXPECT_TRUE(torch::allclose(autocontrast(flat), flat));
  // Zero magnitude leaves images as they are for the blending ops.
  torch::manual_seed(1);
  auto rgb = torch::rand({3, 3, 6, 5});
  for (auto op : {RandOp::kBrightness, RandOp::kColor, RandOp::kContrast, RandOp::kSharpness,
                  RandOp::kRotate, RandOp::kShearX, RandOp::kTranslateY})
    EXPECT_TRUE(torch::allclose(apply_rand_op(rgb, op, mags({0, 0, 0})), rgb, 1e-5, 1e-6))
        << static_cast<int>(op);
}

TEST(RandAugment, EqualizeMatchesPilAlgorithm) {
  torch::manual_seed(5);
  // Levels skewed towards dark values, 2 images x 3 channels of 20x17.
  auto x = (torch::rand({2, 3, 20, 17}).pow(3) * 255).round() / 255;
  auto out = equalize(x);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_EQ(to_levels(out[b][c]), equalize_reference(to_levels(x[b][c])));
  auto constant = torch::full({1, 1, 4, 4}, 0.5f);  // one level: step 0, unchanged
  EXPECT_EQ(to_levels(equalize(constant)), to_levels(constant));
}

TEST(RandAugment, GeometryByHand) {
  auto x = torch::arange(1 * 1 * 5 * 6, torch::kFloat).view({1, 1, 5, 6}) + 1;
  // TranslateX by 2: the content moves two columns right, zeros enter on the left.
  auto t = apply_rand_op(x, RandOp::kTranslateX, mags({2}));
  EXPECT_TRUE(torch::allclose(t[0][0].narrow(1, 2, 4), x[0][0].narrow(1, 0, 4)));
  EXPECT_LT(t[0][0].narrow(1, 0, 2).abs().max().item<float>(), 1e-4);
  // Rotate +90 degrees is counter-clockwise (torchvision): torch.rot90 over (H, W).
  auto sq = torch::arange(16, torch::kFloat).view({1, 1, 4, 4});
  EXPECT_TRUE(torch::allclose(apply_rand_op(sq, RandOp::kRotate, mags({90})),
                              torch::rot90(sq, 1, {2, 3}), 1e-4, 1e-4));
  // ShearX by 1 about the top-left corner: row y of the output samples row y shifted by y.
  auto s = apply_rand_op(x, RandOp::kShearX, mags({1}));
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t c = 0; c + y + 0.5 < 6; ++c) {
      // output pixel centre (c + 0.5, y + 0.5) samples source x = c + 0.5 + (y + 0.5).
      const double sx = c + y + 0.5;  // pixel-centre coordinate minus 0.5
      const int64_t c0 = static_cast<int64_t>(sx);
      const double f = sx - c0;
      if (c0 + 1 >= 6) continue;
      const double want = x[0][0][y][c0].item<double>() * (1 - f) + x[0][0][y][c0 + 1].item<double>() * f;
      EXPECT_NEAR(s[0][0][y][c].item<double>(), want, 1e-4) << y << "," << c;
    }
}

TEST(RandAugment, BatchedDeterministicAndInRange) {
  torch::manual_seed(2);
  auto x = torch::rand({32, 3, 12, 12});
  auto g1 = Draws::for_batch(7, 32);
  auto g2 = Draws::for_batch(7, 32);
  auto a = rand_augment(x, {2, 9}, g1), b = rand_augment(x, {2, 9}, g2);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f);
  // Identity is one op of 14: with 2 ops nearly every image changes.
  auto changed = ((a - x).abs().amax({1, 2, 3}) > 1e-6).sum().item<int64_t>();
  EXPECT_GE(changed, 28);
  // Through the training transform: the config turns it on, the seed fixes it.
  AugmentConfig cfg;
  cfg.hflip = false;
  cfg.randaugment_n = 2;
  auto img = (x.permute({0, 2, 3, 1}) * 255).round().to(torch::kByte);
  Normalize norm{{0, 0, 0}, {1, 1, 1}};
  EXPECT_TRUE(torch::equal(augment_train(img, cfg, norm, 3), augment_train(img, cfg, norm, 3)));
  cfg.randaugment_n = 0;
  EXPECT_TRUE(torch::allclose(augment_train(img, cfg, norm, 3), to_float_nchw(img)));
}

TEST(InputSize, TrainingOutputSizeAndEvalCentreCrop) {
  torch::manual_seed(3);
  auto img = torch::randint(0, 256, {4, 28, 28, 1}, torch::kByte);
  Normalize norm{{0}, {1}};
  AugmentConfig cfg;
  cfg.image_size = 16;
  EXPECT_EQ(augment_train(img, cfg, norm, 1).sizes(), (std::vector<int64_t>{4, 1, 16, 16}));
  cfg.rrc_scale_min = 0.5;
  EXPECT_EQ(augment_train(img, cfg, norm, 1).sizes(), (std::vector<int64_t>{4, 1, 16, 16}));
  EXPECT_EQ(model_input_size(cfg, 28, 28), 16);
  cfg.image_size = 0;
  EXPECT_EQ(model_input_size(cfg, 28, 30), 30);

  // Defaults: the evaluation transform is normalisation alone.
  AugmentConfig plain;
  EXPECT_TRUE(torch::equal(prepare_eval(img, norm, plain), prepare_eval(img, norm)));
  // A 20x20 image whose centre 10x10 is bright: eval_crop 0.5 at image_size 20 shows the centre
  // alone (resized to 40, centre 20 = the old centre 10), image_size 10 at crop 1 halves it.
  auto centre = torch::zeros({1, 20, 20, 1}, torch::kByte);
  centre.narrow(1, 5, 10).narrow(2, 5, 10).fill_(200);
  AugmentConfig zoom;
  zoom.image_size = 20;
  zoom.eval_crop = 0.5;
  auto z = prepare_eval(centre, norm, zoom);
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{1, 1, 20, 20}));
  EXPECT_TRUE(torch::allclose(z.narrow(2, 1, 18).narrow(3, 1, 18), torch::full({1, 1, 18, 18}, 200.0f / 255), 1e-5, 1e-5));
  AugmentConfig half;
  half.image_size = 10;
  auto h = prepare_eval(centre, norm, half);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{1, 1, 10, 10}));
  EXPECT_NEAR(h[0][0][5][5].item<float>(), 200.0f / 255, 1e-5);
  EXPECT_NEAR(h[0][0][0][0].item<float>(), 0.0f, 1e-5);
}

TEST(RandAugment, TimmLevelsAreItsIncreasingVariants) {
  // timm's *_level_to_arg at level 9 of 10 (rand-m9-...-inc1), a 224 x 160 image.
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kRotate, 9, 160, 224), 27.0);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kShearX, 9, 160, 224), 0.27);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kTranslateX, 9, 160, 224), 0.405 * 224);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kTranslateY, 9, 160, 224), 0.405 * 160);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kContrast, 9, 160, 224), 0.81);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kPosterize, 9, 160, 224), 1.0);   // 4 - int(3.6)
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kSolarize, 9, 160, 224), 26.0);   // 256 - int(230.4)
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kSolarizeAdd, 9, 160, 224), 99.0);
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kPosterize, 0, 160, 224), 4.0);   // level 0: mildest
  EXPECT_DOUBLE_EQ(timm_op_magnitude(RandOp::kSolarize, 0, 160, 224), 256.0);  // nothing inverted
}

TEST(RandAugment, TimmInvertSolarizeAddAndFillByHand) {
  // Levels 0, 100, 127, 128, 200, 255 of one channel.
  auto x = torch::tensor({0.0, 100.0, 127.0, 128.0, 200.0, 255.0}).div(255).view({1, 1, 1, 6});
  auto inverted = apply_rand_op(x, RandOp::kInvert, torch::zeros({1}, torch::kDouble));
  EXPECT_TRUE(torch::allclose(inverted * 255, 255 - x * 255, 0, 1e-3));
  // Solarize-add 110: levels below 128 raised by 110, at most 255; the others kept.
  auto added = apply_rand_op(x, RandOp::kSolarizeAdd, torch::full({1}, 110.0, torch::kDouble)) * 255;
  auto want = torch::tensor({110.0, 210.0, 237.0, 128.0, 200.0, 255.0}).view({1, 1, 1, 6});
  EXPECT_TRUE(torch::allclose(added, want.to(added.dtype()), 0, 1e-3)) << added;
  // A 2-pixel translation of a 6-wide image leaves two columns of the fill colour (zeros without).
  auto img = torch::rand({1, 3, 4, 6});
  const std::vector<double> fill = {0.485, 0.456, 0.406};
  auto moved = apply_rand_op(img, RandOp::kTranslateX, torch::full({1}, 2.0, torch::kDouble), fill);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_TRUE(torch::allclose(moved[0][c].narrow(1, 0, 2), torch::full({4, 2}, fill[c]), 1e-5, 1e-5)) << c;
    EXPECT_TRUE(torch::allclose(moved[0][c].narrow(1, 2, 4), img[0][c].narrow(1, 0, 4), 1e-5, 1e-5)) << c;
  }
  auto unfilled = apply_rand_op(img, RandOp::kTranslateX, torch::full({1}, 2.0, torch::kDouble));
  EXPECT_TRUE(torch::allclose(unfilled[0].narrow(2, 0, 2), torch::zeros({3, 4, 2}), 0, 1e-6));
}

TEST(RandAugment, TimmAppliesEachOpWithProbabilityHalf) {
  // One op per image: about half the images are untouched (timm's prob 0.5; of the ops,
  // autocontrast changes a full-range noise image little, counted with the changed); torchvision's
  // applies every drawn op (only its identity, 1 in 14, leaves an image as it was).
  torch::manual_seed(3);
  auto x = torch::rand({600, 3, 8, 8});
  auto untouched = [&](const RandAugmentOptions& o) {
    auto g = Draws::for_batch(11, 600);
    auto y = rand_augment(x, o, g);
    EXPECT_GE(y.min().item<float>(), 0.0f);
    EXPECT_LE(y.max().item<float>(), 1.0f);
    return ((y - x).abs().amax({1, 2, 3}) == 0).sum().item<int64_t>();
  };
  RandAugmentOptions timm{1, 9, true, 0.5, {0.5, 0.5, 0.5}};
  const int64_t timm_untouched = untouched(timm);
  EXPECT_GE(timm_untouched, 240);
  EXPECT_LE(timm_untouched, 360);
  const int64_t tv_untouched = untouched({1, 9});
  EXPECT_LE(tv_untouched, 80);  // ~600/14 = 43 identities
  auto g1 = Draws::for_batch(5, 600), g2 = Draws::for_batch(5, 600);
  EXPECT_TRUE(torch::equal(rand_augment(x, timm, g1), rand_augment(x, timm, g2)));
}
