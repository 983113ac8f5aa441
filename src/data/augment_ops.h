// The augmentation operations behind augment_train, each batched over images with per-image
// parameters: one homography warp per image (random-resized-crop, rotation, translation, shear,
// perspective composed), colour jitter, random erasing, and mixup/cutmix with label mixing.
// Images are float NCHW; geometry works in pixel units about the image centre.
#pragma once

#include <torch/types.h>

#include <optional>
#include <vector>

#include "config/config.h"
#include "data/draws.h"

namespace odyssey {

// t, made on the CPU (random draws, per-image parameters), on `like`'s device, as `dtype` when
// given. To a GPU it goes through page-locked memory without blocking: a plain copy from pageable
// memory synchronises the stream, and the host would wait for all queued GPU work (the previous
// step's update included) at every such copy.
torch::Tensor to_device_of(const torch::Tensor& t, const torch::Tensor& like,
                           std::optional<torch::ScalarType> dtype = std::nullopt);

// Per-image 3x3 matrices [B,3,3] (float64, B = draws.size()) mapping an output pixel (x, y, 1),
// in pixels from the image centre, to the source position it samples; drawn from cfg's ranges.
torch::Tensor random_warps(int64_t height, int64_t width, const AugmentConfig& cfg, Draws& draws);

// Resamples every image through its matrix (bilinear, zeros outside the image, the edge pixels
// up to its border; a matrix that shrinks by 2^L or more at the centre samples an antialiased
// copy halved L times). The identity returns the image; a 90-degree rotation returns
// torch::rot90. With an output size, output pixels are counted in the output's own units about
// its centre and mapped by the matrix into the source's.
torch::Tensor warp(const torch::Tensor& images, const torch::Tensor& matrices);
torch::Tensor warp(const torch::Tensor& images, const torch::Tensor& matrices, int64_t out_h,
                   int64_t out_w);

// Antialiased bilinear resize of NCHW images (as torchvision's antialias=True).
torch::Tensor resize(const torch::Tensor& images, int64_t out_h, int64_t out_w);

// RandAugment (Cubuk et al. 2020), batched: each image applies n ops in turn, each drawn
// uniformly (with replacement) from the policy's set, with a random sign where the op has one.
//  - torchvision's (timm = false): the first 14 RandOps, magnitude bin m of 31, every op applied;
//    geometry resamples bilinearly with zero fill (torchvision: nearest).
//  - timm's rand-mM-mstdS-inc1 (timm = true; DeiT's recipe): the 15 kTimmRandOps, each applied
//    with probability 0.5 at level m of 10 plus Gaussian noise of std mstd (per image and op,
//    clipped to [0, 10]); geometry filled with `fill` (per channel, [0, 1]: timm's img_mean),
//    resampled bilinearly (timm: bilinear or bicubic at random).
struct RandAugmentOptions {
  int64_t n = 0;
  int64_t m = 9;
  bool timm = false;
  double mstd = 0;
  std::vector<double> fill;  // empty: zeros
};
torch::Tensor rand_augment(const torch::Tensor& images, const RandAugmentOptions& options,
                           Draws& draws);

// The RandAugment ops on [0, 1] images [B,C,H,W], each with per-image parameters [B]; pixel
// values follow torchvision's uint8 semantics (posterize, solarize and equalize on the 0..255
// levels). Exposed for tests.
enum class RandOp {
  kIdentity, kShearX, kShearY, kTranslateX, kTranslateY, kRotate, kBrightness, kColor,
  kContrast, kSharpness, kPosterize, kSolarize, kAutoContrast, kEqualize,  // torchvision's 14
  kInvert, kSolarizeAdd  // timm's besides
};
inline constexpr int kNumRandOps = 14;
// timm's _RAND_INCREASING_TRANSFORMS, in its order (translations relative to the size).
inline constexpr RandOp kTimmRandOps[] = {
    RandOp::kAutoContrast, RandOp::kEqualize, RandOp::kInvert, RandOp::kRotate,
    RandOp::kPosterize, RandOp::kSolarize, RandOp::kSolarizeAdd, RandOp::kColor,
    RandOp::kContrast, RandOp::kBrightness, RandOp::kSharpness, RandOp::kShearX,
    RandOp::kShearY, RandOp::kTranslateX, RandOp::kTranslateY};
// The op's magnitude at bin m (0..30) for an image of the given size, unsigned; and whether the
// op takes a random sign.
double rand_op_magnitude(RandOp op, int64_t m, int64_t height, int64_t width);
bool rand_op_signed(RandOp op);
// timm's magnitude of the op at level 0..10 (its *_level_to_arg, the increasing variants),
// unsigned: degrees, shear factor, pixels, enhance offset, bits kept, threshold, or level added.
double timm_op_magnitude(RandOp op, double level, int64_t height, int64_t width);
// Applies op with per-image magnitudes (float64 [B]) to every image; geometry fills the uncovered
// area with `fill` (per channel, [0, 1]) when given, else zeros.
torch::Tensor apply_rand_op(const torch::Tensor& images, RandOp op, const torch::Tensor& magnitude,
                            const std::vector<double>& fill = {});
torch::Tensor equalize(const torch::Tensor& images);
torch::Tensor autocontrast(const torch::Tensor& images);

// Brightness, contrast, saturation and hue jitter (that order) and random grayscale, on [0, 1]
// images; clamped to [0, 1]. Saturation, hue and grayscale apply to 3-channel images only.
torch::Tensor colour_jitter(const torch::Tensor& images, const AugmentConfig& cfg, Draws& draws);

// Luminance (ITU-R 601) of RGB images: [B,1,H,W].
torch::Tensor luminance(const torch::Tensor& rgb);

// Random erasing: each image with probability p gets a rectangle of 2-33 % of its area set to 0.
// On a GPU the rectangles are one mask over the batch (a few kernels, not one per image); on a CPU
// each box is zeroed in place (measured 1.6-3.6x faster there). `form` forces one; both give the
// same result for the same draws. noise (timm's mode "pixel", DeiT's): the rectangle is filled
// with standard normal noise per pixel and channel instead, drawn on the CPU from a generator
// seeded per image (only the boxes' values: one transfer), so the same on any device.
enum class ErasingForm { kAuto, kPerImage, kMasked };
torch::Tensor random_erasing(const torch::Tensor& images, double p, Draws& draws,
                             ErasingForm form = ErasingForm::kAuto, bool noise = false);

// Mixup or cutmix of a batch with its reverse; targets are the mixed one-hot labels [B, classes].
// Its draws (whether to mix, which, lambda) are once per batch, from draws.batch().
struct Mixed {
  torch::Tensor images, targets;
  double lambda = 1;  // weight of the original images' labels
  bool cutmix = false;
};
Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t classes,
                const AugmentConfig& cfg, Draws& draws);

}  // namespace odyssey
