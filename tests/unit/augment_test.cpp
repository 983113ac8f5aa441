// Augmentation: geometry checks worked out by hand, determinism from the seed, normalisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "data/augment.h"
#include "data/normalize_u8.h"

using namespace odyssey;

TEST(Augment, FlipTwiceIsIdentityAndFlipMirrorsColumns) {
  auto x = torch::arange(2 * 1 * 3 * 4, torch::kFloat).view({2, 1, 3, 4});
  auto flags = torch::tensor({true, false});
  auto once = flip_where(x, flags);
  EXPECT_EQ(once[0][0][1][0].item<float>(), x[0][0][1][3].item<float>());
  EXPECT_TRUE(torch::equal(once[1], x[1]));
  EXPECT_TRUE(torch::equal(flip_where(once, flags), x));
}

TEST(Augment, CropAtPaddingOffsetIsIdentityAndShiftsOtherwise) {
  auto x = torch::arange(1 * 1 * 4 * 4, torch::kFloat).view({1, 1, 4, 4}) + 1;
  auto same = crop_padded(x, 2, torch::tensor({2}, torch::kLong), torch::tensor({2}, torch::kLong));
  EXPECT_TRUE(torch::equal(same, x));
  // dy = 0, dx = 2: the window starts two rows above the image: two zero rows, then rows 0-1.
  auto up = crop_padded(x, 2, torch::tensor({0}, torch::kLong), torch::tensor({2}, torch::kLong));
  EXPECT_TRUE(torch::equal(up[0][0].narrow(0, 0, 2), torch::zeros({2, 4})));
  EXPECT_TRUE(torch::equal(up[0][0].narrow(0, 2, 2), x[0][0].narrow(0, 0, 2)));
}

// Both paths - rows copied on the CPU (float, contiguous) and one gather elsewhere (taken here by
// a double batch and a 3-channel channels-last one, as on a GPU) - crop what narrowing a padded
// copy does, also where the padding is wider than the image (3x3, pad 4).
TEST(Augment, CropPathsEqualNarrowingAPaddedCopy) {
  torch::manual_seed(4);
  const int64_t b = 64, pad = 4;
  for (const auto& shape : {std::vector<int64_t>{b, 1, 28, 28}, std::vector<int64_t>{b, 3, 9, 5},
                            std::vector<int64_t>{b, 2, 3, 3}}) {
    const auto x = torch::rand(shape);
    const auto dy = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
    const auto dx = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
    const auto padded = torch::constant_pad_nd(x, {pad, pad, pad, pad}, 0.0);
    auto want = torch::empty_like(x);
    for (int64_t i = 0; i < b; ++i)
      want[i].copy_(padded[i].narrow(1, dy[i].item<int64_t>(), shape[2])
                        .narrow(2, dx[i].item<int64_t>(), shape[3]));
    EXPECT_TRUE(torch::equal(crop_padded(x, pad, dy, dx), want));
    EXPECT_TRUE(torch::equal(crop_padded(x.to(torch::kDouble), pad, dy, dx),
                             want.to(torch::kDouble)));
    const auto nhwc = crop_padded(x.contiguous(torch::MemoryFormat::ChannelsLast), pad, dy, dx);
    EXPECT_TRUE(torch::equal(nhwc, want));
  }
}

TEST(Augment, DeterministicFromSeedAndNormalised) {
  torch::manual_seed(0);
  auto img = torch::randint(0, 256, {16, 8, 8, 3}, torch::kByte);
  AugmentConfig cfg;
  cfg.hflip = true;
  cfg.crop_padding = 2;
  Normalize norm{{0.5, 0.4, 0.3}, {0.2, 0.25, 0.5}};
  auto a = augment_train(img, cfg, norm, 99), b = augment_train(img, cfg, norm, 99);
  auto c = augment_train(img, cfg, norm, 100);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{16, 3, 8, 8}));
  // Evaluation: channel 1 of pixel (2, 3) of image 4, by hand.
  auto e = prepare_eval(img, norm);
  double v = img[4][2][3][1].item<int>() / 255.0;
  EXPECT_NEAR(e[4][1][2][3].item<float>(), (v - 0.4) / 0.25, 1e-5);
  // With augmentation off, training input equals evaluation input.
  AugmentConfig off;
  off.hflip = false;
  EXPECT_TRUE(torch::allclose(augment_train(img, off, norm, 1), e));
}

// The one-pass byte path (data/normalize_u8.h) equals the stages as tensor ops bit for bit: crop
// only, flip only, both, neither; one and three channels; padding wider than the image.
TEST(Augment, OnePassBytePathEqualsTheTensorStagesExactly) {
  torch::manual_seed(5);
  const int64_t b = 48, pad = 4;
  const Normalize norm1{{0.2860}, {0.3530}}, norm3{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};
  for (const auto& shape : {std::vector<int64_t>{b, 28, 28, 1}, std::vector<int64_t>{b, 9, 5, 3},
                            std::vector<int64_t>{b, 3, 3, 3}}) {
    const auto img = torch::randint(0, 256, shape, torch::kByte);
    const Normalize& norm = shape[3] == 1 ? norm1 : norm3;
    const auto mean = torch::tensor(norm.mean, torch::kDouble).to(torch::kFloat).view({1, -1, 1, 1});
    const auto stdv = torch::tensor(norm.std, torch::kDouble).to(torch::kFloat).view({1, -1, 1, 1});
    const auto dy = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
    const auto dx = torch::randint(0, 2 * pad + 1, {b}, torch::kLong);
    const auto flips = torch::rand({b}) < 0.5;
    for (int stages = 0; stages < 4; ++stages) {
      const bool crop = stages & 1, flip = stages & 2;
      auto want = to_float_nchw(img);
      if (crop) want = crop_padded(want, pad, dy, dx);
      if (flip) want = flip_where(want, flips);
      want = want.sub_(mean).div_(stdv);
      const auto got = normalize_u8(img, norm, crop ? pad : 0, crop ? dy : torch::Tensor(),
                                    crop ? dx : torch::Tensor(), flip ? flips : torch::Tensor());
      EXPECT_TRUE(torch::equal(got, want)) << "shape " << c10::IntArrayRef(shape) << ", crop " << crop << ", flip " << flip;
    }
  }
  // The trainer's entry point takes it for pad-crop and flip, with the general path's draws.
  const auto img = torch::randint(0, 256, {b, 28, 28, 1}, torch::kByte);
  AugmentConfig cfg;
  cfg.hflip = true;
  cfg.crop_padding = 2;
  Draws draws = Draws::for_batch(7, b);
  const auto dy7 = draws.randint(5), dx7 = draws.randint(5);
  const auto flips7 = draws.uniform() < 0.5;
  const auto mean = torch::tensor(norm1.mean, torch::kDouble).to(torch::kFloat).view({1, 1, 1, 1});
  const auto stdv = torch::tensor(norm1.std, torch::kDouble).to(torch::kFloat).view({1, 1, 1, 1});
  const auto want = flip_where(crop_padded(to_float_nchw(img), 2, dy7, dx7), flips7).sub_(mean).div_(stdv);
  EXPECT_TRUE(torch::equal(augment_train(img, cfg, norm1, 7), want));
  EXPECT_TRUE(torch::equal(prepare_eval(img, norm1), to_float_nchw(img).sub_(mean).div_(stdv)));
  EXPECT_THROW(normalize_u8(img, norm3), Error);  // three channels' statistics for one channel
}

// ---- The warp, colour, erasing and mixing stages (data/augment_ops.h) ----

#include <ATen/CPUGeneratorImpl.h>

#include "data/augment_ops.h"

namespace {
torch::Tensor one_matrix(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kDouble).view({1, 3, 3});
}
Draws draws_of(int64_t n, uint64_t seed) { return Draws::for_batch(seed, n); }
}  // namespace

TEST(AugmentOps, IdentityWarpReturnsTheImageAndQuarterTurnIsRot90) {
  auto x = torch::rand({1, 3, 6, 6});
  EXPECT_TRUE(torch::allclose(warp(x, one_matrix({1, 0, 0, 0, 1, 0, 0, 0, 1})), x, 1e-5, 1e-6));
  // Output (u, v) samples source (-v, u): out[i][j] = x[j][W-1-i], which is rot90 (k = 1).
  auto r = warp(x, one_matrix({0, -1, 0, 1, 0, 0, 0, 0, 1}));
  EXPECT_TRUE(torch::allclose(r, torch::rot90(x, 1, {2, 3}), 1e-5, 1e-6));
  // x -> -x is the horizontal flip; a shift by one pixel moves columns and brings in zeros.
  EXPECT_TRUE(torch::allclose(warp(x, one_matrix({-1, 0, 0, 0, 1, 0, 0, 0, 1})), x.flip({3}), 1e-5, 1e-6));
  auto s = warp(x, one_matrix({1, 0, 1, 0, 1, 0, 0, 0, 1}));
  EXPECT_TRUE(torch::allclose(s.narrow(3, 0, 5), x.narrow(3, 1, 5), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(s.narrow(3, 5, 1), torch::zeros({1, 3, 6, 1}), 1e-5, 1e-6));
}

TEST(AugmentOps, AnEnlargingWarpIsAResizeWithoutADarkFrame) {
  // 8x8 -> 32x32 (or 24x40) through the warp (output pixels to source pixel units, as the RRC
  // path scales) equals the bilinear resize, edges included: the outer pixels take the edge
  // pixel instead of a blend with the zero padding.
  auto x = torch::rand({2, 3, 8, 8});
  for (auto [oh, ow] : {std::pair<int64_t, int64_t>{32, 32}, {24, 40}}) {
    auto scaled = warp(x, one_matrix({8.0 / ow, 0, 0, 0, 8.0 / oh, 0, 0, 0, 1}).repeat({2, 1, 1}), oh, ow);
    EXPECT_LE((scaled - resize(x, oh, ow)).abs().max().item<double>(), 1e-5) << oh << "x" << ow;
  }
  auto ones = warp(torch::ones({1, 1, 8, 8}), one_matrix({0.25, 0, 0, 0, 0.25, 0, 0, 0, 1}), 32, 32);
  EXPECT_NEAR(ones.min().item<double>(), 1.0, 1e-6);
}

TEST(AugmentOps, AShrinkingWarpFiltersInsteadOfAliasing) {
  // A 2-pixel checkerboard shrunk 4x equals the antialiased resize (the warp samples the image
  // halved twice). Shifted by half a source pixel, bilinear sampling alone would land on pixel
  // centres (0 or 1: the pattern aliased); the halved copies are grey, so the output stays at the
  // mean, as at 2.5x (halved once). An image kept at scale 1 beside a shrunk one keeps its pixels.
  auto checker = ((torch::arange(64).view({64, 1}) + torch::arange(64).view({1, 64})) % 2)
                     .to(torch::kFloat).view({1, 1, 64, 64}).repeat({2, 3, 1, 1});
  auto by4 = warp(checker, one_matrix({4, 0, 0, 0, 4, 0, 0, 0, 1}).repeat({2, 1, 1}), 16, 16);
  EXPECT_LE((by4 - resize(checker, 16, 16)).abs().max().item<double>(), 1e-5);
  for (double s : {4.0, 2.5}) {
    const int64_t out = std::lround(64 / s);
    auto shifted = warp(checker, one_matrix({s, 0, 0.5, 0, s, 0.5, 0, 0, 1}).repeat({2, 1, 1}), out, out);
    EXPECT_LE((shifted - 0.5).abs().max().item<double>(), 0.02) << s;
  }
  auto mixed = torch::cat({one_matrix({4, 0, 0.5, 0, 4, 0.5, 0, 0, 1}), one_matrix({1, 0, 0, 0, 1, 0, 0, 0, 1})});
  auto both = warp(checker, mixed, 16, 16);
  EXPECT_LE((both[0] - 0.5).abs().max().item<double>(), 0.02);
  EXPECT_TRUE(torch::allclose(both[1], checker[1].narrow(1, 24, 16).narrow(2, 24, 16), 1e-5, 1e-6));
}

TEST(AugmentOps, RandomWarpsStayInTheirRanges) {
  AugmentConfig off;
  auto g4 = draws_of(4, 3), g = draws_of(256, 3), g512 = draws_of(512, 3), g16 = draws_of(16, 3);
  EXPECT_TRUE(torch::equal(random_warps(8, 8, off, g4), torch::eye(3, torch::kDouble).repeat({4, 1, 1})));
  AugmentConfig rot;
  rot.rotate_deg = 30;
  auto m = random_warps(8, 8, rot, g);
  auto angle = torch::atan2(m.select(1, 1).select(1, 0), m.select(1, 0).select(1, 0)) * (180 / M_PI);
  EXPECT_LE(angle.abs().max().item<double>(), 30.0 + 1e-9);
  EXPECT_GT(angle.abs().max().item<double>(), 25.0);  // the range is used
  AugmentConfig crop;
  crop.rrc_scale_min = 0.25;
  auto c = random_warps(8, 8, crop, g);
  auto area = c.select(1, 0).select(1, 0) * c.select(1, 1).select(1, 1);
  EXPECT_GE(area.min().item<double>(), 0.25 - 1e-9);  // a draw that fits, as drawn
  EXPECT_LE(area.max().item<double>(), 1.0 + 1e-9);
  // torchvision's RandomResizedCrop on an image twice as wide as high: the crop's ratio in pixels
  // stays in [3/4, 4/3], drawn crops fit (fractions at most 1), the fallback is the centre at 4/3.
  // (A ratio of fractions gave pixel ratios in [3/2, 8/3] here, and crops past the image were
  // clamped to it, smaller than drawn.)
  for (int64_t h : {8, 16}) {
    const int64_t w = 24 - h;  // 8 x 16 and 16 x 8
    auto wide = random_warps(h, w, crop, g512);
    auto wf = wide.select(1, 0).select(1, 0), hf = wide.select(1, 1).select(1, 1);
    auto pixel_ratio = wf * w / (hf * h);
    EXPECT_GE(pixel_ratio.min().item<double>(), 3.0 / 4 - 1e-9) << h << "x" << w;
    EXPECT_LE(pixel_ratio.max().item<double>(), 4.0 / 3 + 1e-9) << h << "x" << w;
    EXPECT_LE(torch::max(wf.max(), hf.max()).item<double>(), 1.0 + 1e-9);
    EXPECT_GE((wf * hf).min().item<double>(), 0.25 - 1e-9);
  }
  AugmentConfig persp;
  persp.perspective = 0.3;
  auto p = random_warps(8, 8, persp, g16);
  // The homography maps each output corner inside 30 % of the half-size of where it was.
  auto corner = torch::tensor({4.0, 4.0, 1.0}, torch::kDouble);
  auto moved = torch::matmul(p, corner);
  auto mx = moved.select(1, 0) / moved.select(1, 2), my = moved.select(1, 1) / moved.select(1, 2);
  EXPECT_LE((mx - 4).abs().max().item<double>(), 0.3 * 4 + 1e-9);
  EXPECT_LE((my - 4).abs().max().item<double>(), 0.3 * 4 + 1e-9);
}

TEST(AugmentOps, ColourJitterNeutralAndGrayscaleKeepsLuminance) {
  auto x = torch::rand({8, 3, 5, 5});
  AugmentConfig grey;
  grey.grayscale_p = 1.0;
  auto g = draws_of(8, 1);
  auto y = colour_jitter(x, grey, g);
  EXPECT_TRUE(torch::allclose(y.select(1, 0), y.select(1, 2)));
  EXPECT_TRUE(torch::allclose(luminance(y), luminance(x), 1e-5, 1e-6));
  // A zero hue rotation, saturation and contrast factor of one leave the image.
  AugmentConfig tiny;
  tiny.hue = 1e-12;
  tiny.saturation = 1e-12;
  EXPECT_TRUE(torch::allclose(colour_jitter(x, tiny, g), x, 1e-4, 1e-5));
  AugmentConfig bright;
  bright.brightness = 0.5;
  auto z = colour_jitter(x, bright, g);
  auto ratio = z.sum({1, 2, 3}) / x.sum({1, 2, 3});
  EXPECT_GE(ratio.min().item<float>(), 0.5f - 1e-4f);
  EXPECT_LE(z.max().item<float>(), 1.0f);
}

TEST(AugmentOps, ErasingZeroesOneRectangleOfBoundedArea) {
  auto x = torch::ones({32, 1, 20, 20});
  auto g = draws_of(32, 5);
  auto y = random_erasing(x, 1.0, g);
  auto zeros = (y == 0).sum({1, 2, 3}).to(torch::kDouble) / 400.0;
  EXPECT_GT(zeros.min().item<double>(), 0.0);
  EXPECT_LE(zeros.max().item<double>(), 0.40);  // 33 % area, rounded to whole pixels
  EXPECT_TRUE(torch::equal(random_erasing(x, 0.0, g), x));
}

// The GPU's form (one mask over the batch) erases exactly the per-image form's boxes.
TEST(AugmentOps, ErasingMaskedFormEqualsPerImageForm) {
  auto x = torch::rand({64, 3, 24, 17}) + 0.5;
  auto g1 = draws_of(64, 9), g2 = draws_of(64, 9);
  auto per_image = random_erasing(x, 0.5, g1, ErasingForm::kPerImage);
  auto masked = random_erasing(x, 0.5, g2, ErasingForm::kMasked);
  EXPECT_TRUE(torch::equal(per_image, masked));
  const auto erased = (per_image == 0).flatten(1).any(1);  // some images erased, some not
  EXPECT_GT(erased.sum().item<int64_t>(), 10);
  EXPECT_LT(erased.sum().item<int64_t>(), 54);
  // Every channel of an erased pixel, nothing outside the boxes.
  EXPECT_TRUE(torch::equal((per_image == 0).all(1), (per_image == 0).any(1)));
  EXPECT_TRUE(torch::equal(per_image.masked_fill(per_image == 0, 1), x.masked_fill(per_image == 0, 1)));
}

// timm's mode "pixel" (DeiT's): the same boxes, filled with standard normal noise per pixel and
// channel; nothing outside them changes. (One form on every device: the noise is drawn on the CPU.)
TEST(AugmentOps, ErasingPixelModeFillsTheSameBoxesWithStandardNoise) {
  auto x = torch::full({64, 3, 24, 17}, 7.0f);
  auto g1 = draws_of(64, 9), g2 = draws_of(64, 9), g3 = draws_of(64, 9);
  const auto zeroed = random_erasing(x, 0.5, g1, ErasingForm::kPerImage);
  const auto noisy = random_erasing(x, 0.5, g2, ErasingForm::kAuto, /*noise=*/true);
  const auto boxes = zeroed == 0;
  EXPECT_TRUE(torch::equal(noisy.masked_fill(boxes, 7.0f), x));
  const auto values = noisy.masked_select(boxes).to(torch::kDouble);
  ASSERT_GT(values.numel(), 2000);
  EXPECT_EQ((values == 7.0).sum().item<int64_t>(), 0);
  EXPECT_LT(std::abs(values.mean().item<double>()), 0.05);
  EXPECT_NEAR(values.std().item<double>(), 1.0, 0.05);
  const auto erased = boxes.any(1, /*keepdim=*/true).expand_as(boxes);
  EXPECT_TRUE(torch::equal(erased, boxes)) << "every channel of a box";
  EXPECT_FALSE(torch::equal(noisy.select(1, 0), noisy.select(1, 1))) << "noise per channel";
  EXPECT_TRUE(torch::equal(noisy, random_erasing(x, 0.5, g3, ErasingForm::kAuto, true)))
      << "a pure function of the draws";
}

TEST(AugmentOps, MixupAndCutmixMixLabelsLikeImages) {
  auto x = torch::rand({6, 1, 10, 10});
  auto labels = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong);
  AugmentConfig mixup;
  mixup.mixup_alpha = 0.4;
  auto g = draws_of(6, 11);
  Mixed m = mix_batch(x, labels, 8, mixup, g);
  EXPECT_FALSE(m.cutmix);
  EXPECT_TRUE(torch::allclose(m.images, x * m.lambda + x.flip(0) * (1 - m.lambda)));
  EXPECT_TRUE(torch::allclose(m.targets.sum(1), torch::ones({6})));
  EXPECT_NEAR(m.targets[0][0].item<float>(), m.lambda, 1e-6);
  EXPECT_NEAR(m.targets[0][5].item<float>(), 1 - m.lambda, 1e-6);
  AugmentConfig cutmix;
  cutmix.cutmix_alpha = 1.0;
  Mixed c = mix_batch(x, labels, 8, cutmix, g);
  EXPECT_TRUE(c.cutmix);
  // The label weight is the share of pixels still from the original image.
  auto kept = (c.images == x).to(torch::kDouble).mean({1, 2, 3});
  EXPECT_NEAR(kept[0].item<double>(), c.lambda, 1e-9);
  EXPECT_NEAR(c.targets[0][0].item<float>(), c.lambda, 1e-6);
  // Off: one-hot targets, images untouched.
  AugmentConfig none;
  Mixed n = mix_batch(x, labels, 8, none, g);
  EXPECT_TRUE(torch::equal(n.images, x));
  EXPECT_TRUE(torch::equal(n.targets, torch::one_hot(labels, 8).to(torch::kFloat)));
}

TEST(AugmentOps, FullPipelineIsDeterministicFromTheSeed) {
  torch::manual_seed(0);
  auto img = torch::randint(0, 256, {8, 12, 12, 3}, torch::kByte);
  auto labels = torch::randint(0, 10, {8}, torch::kLong);
  AugmentConfig all;
  all.rrc_scale_min = 0.3, all.rotate_deg = 15, all.translate = 0.1, all.shear_deg = 5;
  all.perspective = 0.2, all.brightness = 0.4, all.contrast = 0.4, all.saturation = 0.4;
  all.hue = 0.1, all.grayscale_p = 0.2, all.erasing_p = 0.25, all.mixup_alpha = 0.8;
  all.cutmix_alpha = 1.0;
  Normalize norm{{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  auto a = augment_train_batch(img, labels, 10, all, norm, 42);
  auto b = augment_train_batch(img, labels, 10, all, norm, 42);
  auto c = augment_train_batch(img, labels, 10, all, norm, 43);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.targets, b.targets));
  EXPECT_FALSE(torch::equal(a.images, c.images));
  EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{8, 3, 12, 12}));
  EXPECT_TRUE(torch::isfinite(a.images).all().item<bool>());
}

TEST(AugmentOps, DrawsFollowTheImageNotTheRank) {
  // One rank's batch of 8 (keys 0..7) against two ranks' of 4 (keys 0..3, 4..7): every image draws
  // the same numbers, and the training transform (every op but mixup, which pairs within a rank's
  // batch) gives each image the same result.
  Draws one(77, {0, 1, 2, 3, 4, 5, 6, 7}, 1);
  Draws first(77, {0, 1, 2, 3}, 2), second(77, {4, 5, 6, 7}, 3);
  const auto u = one.columns(5);
  EXPECT_TRUE(torch::equal(u, torch::cat({first.columns(5), second.columns(5)})));
  EXPECT_TRUE(torch::equal(one.normal(), torch::cat({first.normal(), second.normal()})));
  EXPECT_TRUE(torch::equal(one.randint(9), torch::cat({first.randint(9), second.randint(9)})));
  EXPECT_GT((u - u.mean()).abs().max().item<double>(), 0.1) << "not constant";
  EXPECT_FALSE(torch::equal(u.select(0, 0), u.select(0, 1))) << "images draw apart";
  torch::manual_seed(5);
  auto img = torch::randint(0, 256, {8, 16, 16, 3}, torch::kByte);
  AugmentConfig all;
  all.crop_padding = 2, all.rrc_scale_min = 0.3, all.rotate_deg = 15, all.perspective = 0.2;
  all.brightness = 0.4, all.saturation = 0.4, all.hue = 0.1, all.grayscale_p = 0.3;
  all.erasing_p = 0.5, all.erasing_mode = "pixel", all.randaugment_n = 2, all.randaugment_policy = "timm";
  all.randaugment_mstd = 0.5, all.image_size = 24;
  Normalize norm{{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  Draws whole(9, {0, 1, 2, 3, 4, 5, 6, 7}, 1), a(9, {0, 1, 2, 3}, 2), b(9, {4, 5, 6, 7}, 3);
  const auto together = augment_train_batch(img, {}, 10, all, norm, whole).images;
  const auto split = torch::cat({augment_train_batch(img.narrow(0, 0, 4), {}, 10, all, norm, a).images,
                                 augment_train_batch(img.narrow(0, 4, 4), {}, 10, all, norm, b).images});
  EXPECT_LE((together - split).abs().max().item<double>(), 1e-5);
  Draws other(10, {0, 1, 2, 3, 4, 5, 6, 7}, 1);
  EXPECT_GT((augment_train_batch(img, {}, 10, all, norm, other).images - together).abs().max().item<double>(), 0.1)
      << "another step draws other numbers";
}

TEST(Augment, AWarpWithoutACropFramesNonSquareImagesAtOneScale) {
  // 12 x 16 at image_size 8 with a rotation of (nearly) nothing: output pixels map to source ones
  // at one scale for both axes, 1.5 (the shorter side fits, the centre square), not 2 x 1.5 (the
  // whole image squeezed).
  torch::manual_seed(6);
  auto img = torch::randint(0, 256, {2, 12, 16, 3}, torch::kByte);
  Normalize norm{{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}};
  AugmentConfig cfg;
  cfg.hflip = false, cfg.image_size = 8, cfg.rotate_deg = 1e-9;
  const auto train = augment_train(img, cfg, norm, 1);
  const auto x = to_float_nchw(img);
  const auto centre = warp(x, one_matrix({1.5, 0, 0, 0, 1.5, 0, 0, 0, 1}).repeat({2, 1, 1}), 8, 8);
  const auto squeezed = warp(x, one_matrix({2, 0, 0, 0, 1.5, 0, 0, 0, 1}).repeat({2, 1, 1}), 8, 8);
  EXPECT_LE((train - centre).abs().max().item<double>(), 1e-4);
  EXPECT_GT((train - squeezed).abs().max().item<double>(), 0.05);
}

TEST(Augment, EvalCropFollowsTimmAndTorchvisionRounding) {
  // 300 x 400 at 224 with eval_crop 0.9: the shorter side to floor(224 / 0.9) = 248 (timm's
  // scale_size), the longer to int(248 x 400 / 300) = 330, the centre 224 square at rows 12 and
  // columns round(53) = 53.
  torch::manual_seed(4);
  auto x = torch::rand({1, 3, 300, 400});
  auto want = resize(x, 248, 330).narrow(2, 12, 224).narrow(3, 53, 224);
  EXPECT_TRUE(torch::equal(resize_centre_crop(x, 224, 224, 0.9), want.contiguous()));
  // Offsets round halves to even as Python's round(): 224 / (224 / 257.5) -> 257, and
  // (257 - 224) / 2 = 16.5 -> 16.
  auto y = torch::rand({1, 1, 300, 300});
  EXPECT_TRUE(torch::equal(resize_centre_crop(y, 224, 224, 224 / 257.5),
                           resize(y, 257, 257).narrow(2, 16, 224).narrow(3, 16, 224).contiguous()));
}

TEST(Augment, TrainingWithoutACropFramesNonSquareImagesAsEvaluationDoes) {
  // A 12 x 16 image at image_size 8, no warp: the centre square of the shorter side, not the
  // whole image squeezed, the same geometry evaluation takes with eval_crop 1.
  auto img = torch::randint(0, 256, {2, 12, 16, 3}, torch::kByte);
  Normalize norm{{0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}};
  AugmentConfig cfg;
  cfg.hflip = false, cfg.image_size = 8;
  const auto train = augment_train(img, cfg, norm, 1);
  EXPECT_TRUE(torch::allclose(train, prepare_eval(img, norm, cfg)));
  // The shorter side to 8, the longer to int(8 x 16 / 12) = 10, the centre columns 1..8.
  EXPECT_TRUE(torch::allclose(train, resize(to_float_nchw(img), 8, 10).narrow(3, 1, 8), 1e-6, 1e-6));
}
