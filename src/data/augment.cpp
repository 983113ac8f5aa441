#include "data/augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "data/augment_ops.h"
#include "data/normalize_u8.h"

namespace odyssey {

torch::Tensor to_float_nchw(const torch::Tensor& images_u8) {
  return images_u8.permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0).contiguous();
}

namespace {
torch::Tensor normalize(torch::Tensor x, const Normalize& norm) {
  const int64_t c = x.size(1);
  auto per_channel = [&](const std::vector<double>& v) {
    return to_device_of(torch::tensor(v, torch::kDouble), x, torch::kFloat).view({1, c, 1, 1});
  };
  auto mean = per_channel(norm.mean);
  auto stdv = per_channel(norm.std);
  return x.sub_(mean).div_(stdv);
}
}  // namespace

torch::Tensor flip_where(const torch::Tensor& images, const torch::Tensor& flags) {
  auto mask = to_device_of(flags, images).view({-1, 1, 1, 1});
  return torch::where(mask, images.flip({3}), images);
}

namespace {
// CPU float NCHW: copies each image's rows straight from the unpadded input and zero-fills what
// falls in the padding (one memcpy per row; no padded copy, no per-image tensor operations).
torch::Tensor crop_rows(const torch::Tensor& images, int64_t pad, const torch::Tensor& dy,
                        const torch::Tensor& dx) {
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  TORCH_CHECK(dy.is_cpu() && dx.is_cpu() && dy.numel() == b && dx.numel() == b,
              "crop_padded: dy and dx must be int64 CPU tensors of one offset per image");
  auto out = torch::empty_like(images);
  const float* src = images.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t* dya = dy.data_ptr<int64_t>();
  const int64_t* dxa = dx.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t sy = dya[i] - pad, sx = dxa[i] - pad;  // output (0, 0) reads input (sy, sx)
    const int64_t x0 = std::clamp<int64_t>(-sx, 0, w), x1 = std::clamp<int64_t>(w - sx, 0, w);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* plane = src + (i * c + ch) * h * w;
      float* row = dst + (i * c + ch) * h * w;
      for (int64_t y = 0; y < h; ++y, row += w) {
        const int64_t from = y + sy;
        if (from < 0 || from >= h || x0 >= x1) {
          std::fill(row, row + w, 0.0f);
          continue;
        }
        std::fill(row, row + x0, 0.0f);
        std::memcpy(row + x0, plane + from * w + x0 + sx, (x1 - x0) * sizeof(float));
        std::fill(row + x1, row + w, 0.0f);
      }
    }
  }
  return out;
}
}  // namespace

torch::Tensor crop_padded(const torch::Tensor& images, int64_t pad, const torch::Tensor& dy,
                          const torch::Tensor& dx) {
  if (images.is_cpu() && images.scalar_type() == torch::kFloat && images.is_contiguous())
    return crop_rows(images, pad, dy.contiguous(), dx.contiguous());
  // Elsewhere (a GPU batch): one gather from the padded batch, every image's window at once,
  // instead of one copy kernel per image.
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  auto padded = torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0.0).flatten(2);
  const auto lng = torch::TensorOptions().dtype(torch::kLong).device(images.device());
  const auto rows = to_device_of(dy, images, torch::kLong).view({b, 1, 1}) +
                    torch::arange(h, lng).view({1, h, 1});
  const auto cols = to_device_of(dx, images, torch::kLong).view({b, 1, 1}) +
                    torch::arange(w, lng).view({1, 1, w});
  const auto index = (rows * (w + 2 * pad) + cols).view({b, 1, h * w}).expand({b, c, h * w});
  return padded.gather(2, index).view({b, c, h, w});
}

namespace {
// The stages up to normalisation (crop, warp or resize, flip, RandAugment, colour) as tensor ops.
torch::Tensor geometry_and_colour(const torch::Tensor& images_u8, const AugmentConfig& cfg,
                                  const Normalize& norm, Draws& draws) {
  auto x = to_float_nchw(images_u8);
  if (cfg.crop_padding > 0) {
    auto dy = draws.randint(2 * cfg.crop_padding + 1);
    auto dx = draws.randint(2 * cfg.crop_padding + 1);
    x = crop_padded(x, cfg.crop_padding, dy, dx);
  }
  // Output size: cfg.image_size, or the stored size. The warp resamples straight to it.
  const int64_t out_h = cfg.image_size > 0 ? cfg.image_size : x.size(2);
  const int64_t out_w = cfg.image_size > 0 ? cfg.image_size : x.size(3);
  if (cfg.warps()) {
    auto m = random_warps(x.size(2), x.size(3), cfg, draws);
    if (out_h != x.size(2) || out_w != x.size(3)) {  // output pixels -> source pixel units
      // A random-resized crop is stretched to the output (torchvision's); without one, the
      // output is the image's centre at one scale for both axes (the shorter side fits), as
      // evaluation (and timm's training without crops) frames a non-square image.
      const double sx = static_cast<double>(x.size(3)) / out_w, sy = static_cast<double>(x.size(2)) / out_h;
      auto scale = torch::eye(3, torch::kDouble);
      scale[0][0] = cfg.rrc_scale_min > 0 ? sx : std::min(sx, sy);
      scale[1][1] = cfg.rrc_scale_min > 0 ? sy : std::min(sx, sy);
      m = torch::matmul(m, scale);
    }
    x = warp(x, m, out_h, out_w);
  } else {
    x = resize_centre_crop(x, out_h, out_w, 1.0);
  }
  if (cfg.hflip) x = flip_where(x, draws.uniform() < 0.5);
  if (cfg.randaugment_n > 0) {
    RandAugmentOptions ra{cfg.randaugment_n, cfg.randaugment_m, cfg.randaugment_policy == "timm",
                          cfg.randaugment_mstd, {}};
    if (ra.timm) ra.fill = norm.mean;  // timm's img_mean: the normalisation's mean colour
    x = rand_augment(x, ra, draws);
  }
  if (cfg.brightness > 0 || cfg.contrast > 0 || cfg.saturation > 0 || cfg.hue > 0 ||
      cfg.grayscale_p > 0)
    x = colour_jitter(x, cfg, draws);
  return normalize(std::move(x), norm);
}

// CPU bytes with at most a pad-crop and a flip before normalisation (no warp, resize,
// RandAugment or colour): one table-lookup pass (data/normalize_u8.h), bit-identical, the same draws.
bool light_on_cpu(const torch::Tensor& images_u8, const AugmentConfig& cfg) {
  const bool resized = cfg.image_size > 0 && (cfg.image_size != images_u8.size(1) || cfg.image_size != images_u8.size(2));
  return images_u8.is_cpu() && images_u8.scalar_type() == torch::kByte && !cfg.warps() && !resized &&
         cfg.randaugment_n == 0 && cfg.brightness <= 0 && cfg.contrast <= 0 && cfg.saturation <= 0 &&
         cfg.hue <= 0 && cfg.grayscale_p <= 0;
}
}  // namespace

TrainInputs augment_train_batch(const torch::Tensor& images_u8, const torch::Tensor& labels,
                                int64_t classes, const AugmentConfig& cfg, const Normalize& norm,
                                Draws& draws) {
  ODY_CHECK(draws.size() == images_u8.size(0),
            ODY_MSG("augment_train_batch: draws for " << draws.size() << " images, a batch of " << images_u8.size(0)), "");
  torch::Tensor x;
  if (light_on_cpu(images_u8, cfg)) {
    torch::Tensor dy, dx, flips;  // drawn in the general path's order
    if (cfg.crop_padding > 0) {
      dy = draws.randint(2 * cfg.crop_padding + 1);
      dx = draws.randint(2 * cfg.crop_padding + 1);
    }
    if (cfg.hflip) flips = draws.uniform() < 0.5;
    x = normalize_u8(images_u8, norm, cfg.crop_padding, dy, dx, flips);
  } else {
    x = geometry_and_colour(images_u8, cfg, norm, draws);
  }
  if (cfg.erasing_p > 0)
    x = random_erasing(x, cfg.erasing_p, draws, ErasingForm::kAuto, cfg.erasing_mode == "pixel");
  TrainInputs out;
  if (cfg.mixes() && labels.defined()) {
    Mixed m = mix_batch(x, labels, classes, cfg, draws);
    out.images = m.images;
    out.targets = m.targets;
  } else {
    out.images = x;
  }
  return out;
}

TrainInputs augment_train_batch(const torch::Tensor& images_u8, const torch::Tensor& labels,
                                int64_t classes, const AugmentConfig& cfg, const Normalize& norm,
                                uint64_t seed) {
  Draws draws = Draws::for_batch(seed, images_u8.size(0));
  return augment_train_batch(images_u8, labels, classes, cfg, norm, draws);
}

torch::Tensor augment_train(const torch::Tensor& images_u8, const AugmentConfig& cfg,
                            const Normalize& norm, uint64_t seed) {
  return augment_train_batch(images_u8, torch::Tensor(), 0, cfg, norm, seed).images;
}

torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm) {
  if (images_u8.is_cpu() && images_u8.scalar_type() == torch::kByte) return normalize_u8(images_u8, norm);
  return normalize(to_float_nchw(images_u8), norm);
}

torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm,
                           const AugmentConfig& cfg) {
  const int64_t out_h = cfg.image_size > 0 ? cfg.image_size : images_u8.size(1);
  const int64_t out_w = cfg.image_size > 0 ? cfg.image_size : images_u8.size(2);
  if (out_h == images_u8.size(1) && out_w == images_u8.size(2) && cfg.eval_crop == 1.0)
    return prepare_eval(images_u8, norm);  // identity geometry
  return normalize(resize_centre_crop(to_float_nchw(images_u8), out_h, out_w, cfg.eval_crop), norm);
}

torch::Tensor resize_centre_crop(const torch::Tensor& images, int64_t out_h, int64_t out_w, double crop) {
  const int64_t h = images.size(2), w = images.size(3);
  if (h == out_h && w == out_w && crop == 1.0) return images;
  // The side that binds (the shorter, for a square output) becomes floor(its output / crop),
  // the other follows at the image's aspect, truncated: timm's scale_size = floor(img_size /
  // crop_pct) and torchvision's Resize(int).
  const bool rows_bind = static_cast<double>(out_h) / h >= static_cast<double>(out_w) / w;
  int64_t rh, rw;
  if (rows_bind) {
    rh = static_cast<int64_t>(std::floor(out_h / crop));
    rw = static_cast<int64_t>(static_cast<double>(rh) * w / h);
  } else {
    rw = static_cast<int64_t>(std::floor(out_w / crop));
    rh = static_cast<int64_t>(static_cast<double>(rw) * h / w);
  }
  rh = std::max(rh, out_h), rw = std::max(rw, out_w);
  auto x = resize(images, rh, rw);
  // torchvision's CenterCrop: offsets round((size - crop) / 2), halves to even as Python's round.
  const auto offset = [](int64_t extra) { return static_cast<int64_t>(std::nearbyint(extra / 2.0)); };
  return x.narrow(2, offset(rh - out_h), out_h).narrow(3, offset(rw - out_w), out_w).contiguous();
}

int64_t model_input_size(const AugmentConfig& cfg, int64_t height, int64_t width) {
  return cfg.image_size > 0 ? cfg.image_size : std::max(height, width);
}

}  // namespace odyssey
