// Batched augmentation and normalisation as tensor ops: uint8 NHWC batches in, float NCHW out.
#pragma once

#include <torch/types.h>

#include <vector>

#include "config/config.h"
#include "data/draws.h"

namespace odyssey {

struct Normalize {
  std::vector<double> mean, std;  // per channel, [0, 1] pixel units
};

// Training transform, batched, deterministic given the draws (the trainer keys each image by its
// place in the step's global batch: data/draws.h): random crop after zero padding, one warp per
// image (random-resized-crop, rotation, translation, shear, perspective) to the output size (or,
// with no warp on, an antialiased resize of the shorter side and the centre crop), horizontal
// flip, RandAugment, colour jitter and grayscale, normalisation, random erasing, then
// mixup/cutmix. Each stage draws only when enabled, so a config without it gets the same numbers
// as before it existed.
struct TrainInputs {
  torch::Tensor images;   // float [B,C,H,W], normalised
  torch::Tensor targets;  // float [B, classes] mixed labels, or undefined when no mixing ran
};
TrainInputs augment_train_batch(const torch::Tensor& images_u8, const torch::Tensor& labels,
                                int64_t classes, const AugmentConfig& cfg, const Normalize& norm,
                                Draws& draws);
// The same with Draws::for_batch(seed, batch size).
TrainInputs augment_train_batch(const torch::Tensor& images_u8, const torch::Tensor& labels,
                                int64_t classes, const AugmentConfig& cfg, const Normalize& norm,
                                uint64_t seed);
// The images alone (no label mixing), Draws::for_batch(seed, batch size).
torch::Tensor augment_train(const torch::Tensor& images_u8, const AugmentConfig& cfg,
                            const Normalize& norm, uint64_t seed);

// Evaluation transform: normalisation only (the stored size).
torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm);
// Resize so that the output's binding side (the shorter, for a square output) is floor(out /
// crop) and the other follows at the image's aspect (truncated), then take the centre out_h x
// out_w window (offsets rounded half to even): timm's eval transform with crop_pct = crop,
// torchvision's Resize(int) + CenterCrop. Antialiased.
torch::Tensor resize_centre_crop(const torch::Tensor& images, int64_t out_h, int64_t out_w, double crop);

// Evaluation transform of cfg: resize_centre_crop to image_size with eval_crop, normalisation.
// Identity geometry when image_size is 0 (or the stored size) and eval_crop is 1.
torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm,
                           const AugmentConfig& cfg);

// The side of the square inputs the model is built for: cfg.image_size or the stored size.
int64_t model_input_size(const AugmentConfig& cfg, int64_t height, int64_t width);

// uint8 [B,H,W,C] -> float [B,C,H,W] in [0, 1].
torch::Tensor to_float_nchw(const torch::Tensor& images_u8);

// Random horizontal flip of each image whose flag is set (flags: bool [B]), NCHW.
torch::Tensor flip_where(const torch::Tensor& images, const torch::Tensor& flags);

// Crops an HxW window from each zero-padded image at per-image offsets (dy, dx: int64 [B] on the
// CPU, in [0, 2*pad]).
torch::Tensor crop_padded(const torch::Tensor& images, int64_t pad, const torch::Tensor& dy,
                          const torch::Tensor& dx);

}  // namespace odyssey
