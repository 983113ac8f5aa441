// Augmentation: geometry checks worked out by hand, determinism from the seed, normalisation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/augment.h"

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
