// The augmentation operations behind augment_train, each batched over images with per-image
// parameters: one homography warp per image (random-resized-crop, rotation, translation, shear,
// perspective composed), colour jitter, random erasing, and mixup/cutmix with label mixing.
// Images are float NCHW; geometry works in pixel units about the image centre.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include "config/config.h"

namespace odyssey {

// Per-image 3x3 matrices [B,3,3] (float64) mapping an output pixel (x, y, 1), in pixels from the
// image centre, to the source position it samples; drawn from cfg's ranges.
torch::Tensor random_warps(int64_t batch, int64_t height, int64_t width, const AugmentConfig& cfg,
                           at::Generator& gen);

// Resamples every image through its matrix (bilinear, zeros outside). The identity returns the
// image; a 90-degree rotation returns torch::rot90.
torch::Tensor warp(const torch::Tensor& images, const torch::Tensor& matrices);

// Brightness, contrast, saturation and hue jitter (that order) and random grayscale, on [0, 1]
// images; clamped to [0, 1]. Saturation, hue and grayscale apply to 3-channel images only.
torch::Tensor colour_jitter(const torch::Tensor& images, const AugmentConfig& cfg,
                            at::Generator& gen);

// Luminance (ITU-R 601) of RGB images: [B,1,H,W].
torch::Tensor luminance(const torch::Tensor& rgb);

// Random erasing: each image with probability p gets a rectangle of 2-33 % of its area set to 0.
torch::Tensor random_erasing(const torch::Tensor& images, double p, at::Generator& gen);

// Mixup or cutmix of a batch with its reverse; targets are the mixed one-hot labels [B, classes].
struct Mixed {
  torch::Tensor images, targets;
  double lambda = 1;  // weight of the original images' labels
  bool cutmix = false;
};
Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t classes,
                const AugmentConfig& cfg, at::Generator& gen);

}  // namespace odyssey
