#include "data/augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "data/augment_ops.h"

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

TrainInputs augment_train_batch(const torch::Tensor& images_u8, const torch::Tensor& labels,
                                int64_t classes, const AugmentConfig& cfg, const Normalize& norm,
                                uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto x = to_float_nchw(images_u8);
  const int64_t b = x.size(0);
  if (cfg.crop_padding > 0) {
    auto dy = torch::randint(0, 2 * cfg.crop_padding + 1, {b}, gen, torch::kLong);
    auto dx = torch::randint(0, 2 * cfg.crop_padding + 1, {b}, gen, torch::kLong);
    x = crop_padded(x, cfg.crop_padding, dy, dx);
  }
  // Output size: cfg.image_size, or the stored size. The warp resamples straight to it.
  const int64_t out_h = cfg.image_size > 0 ? cfg.image_size : x.size(2);
  const int64_t out_w = cfg.image_size > 0 ? cfg.image_size : x.size(3);
  if (cfg.warps()) {
    auto m = random_warps(b, x.size(2), x.size(3), cfg, gen);
    if (out_h != x.size(2) || out_w != x.size(3)) {  // output pixels -> source pixel units
      auto scale = torch::eye(3, torch::kDouble);
      scale[0][0] = static_cast<double>(x.size(3)) / out_w;
      scale[1][1] = static_cast<double>(x.size(2)) / out_h;
      m = torch::matmul(m, scale);
    }
    x = warp(x, m, out_h, out_w);
  } else {
    x = resize(x, out_h, out_w);
  }
  if (cfg.hflip) x = flip_where(x, torch::rand({b}, gen) < 0.5);
  if (cfg.randaugment_n > 0) {
    RandAugmentOptions ra{cfg.randaugment_n, cfg.randaugment_m, cfg.randaugment_policy == "timm",
                          cfg.randaugment_mstd, {}};
    if (ra.timm) ra.fill = norm.mean;  // timm's img_mean: the normalisation's mean colour
    x = rand_augment(x, ra, gen);
  }
  if (cfg.brightness > 0 || cfg.contrast > 0 || cfg.saturation > 0 || cfg.hue > 0 ||
      cfg.grayscale_p > 0)
    x = colour_jitter(x, cfg, gen);
  x = normalize(std::move(x), norm);
  if (cfg.erasing_p > 0)
    x = random_erasing(x, cfg.erasing_p, gen, ErasingForm::kAuto, cfg.erasing_mode == "pixel");
  TrainInputs out;
  if (cfg.mixes() && labels.defined()) {
    Mixed m = mix_batch(x, labels, classes, cfg, gen);
    out.images = m.images;
    out.targets = m.targets;
  } else {
    out.images = x;
  }
  return out;
}

torch::Tensor augment_train(const torch::Tensor& images_u8, const AugmentConfig& cfg,
                            const Normalize& norm, uint64_t seed) {
  return augment_train_batch(images_u8, torch::Tensor(), 0, cfg, norm, seed).images;
}

torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm) {
  return normalize(to_float_nchw(images_u8), norm);
}

torch::Tensor prepare_eval(const torch::Tensor& images_u8, const Normalize& norm,
                           const AugmentConfig& cfg) {
  auto x = to_float_nchw(images_u8);
  const int64_t h = x.size(2), w = x.size(3);
  const int64_t out_h = cfg.image_size > 0 ? cfg.image_size : h;
  const int64_t out_w = cfg.image_size > 0 ? cfg.image_size : w;
  // Resize so that the centre out_h x out_w window is eval_crop of the shorter side, then crop.
  const double scale = std::max(static_cast<double>(out_h) / h, static_cast<double>(out_w) / w) /
                       cfg.eval_crop;
  const int64_t rh = std::max<int64_t>(out_h, std::llround(h * scale));
  const int64_t rw = std::max<int64_t>(out_w, std::llround(w * scale));
  x = resize(x, rh, rw);
  x = x.narrow(2, (rh - out_h) / 2, out_h).narrow(3, (rw - out_w) / 2, out_w);
  return normalize(x.contiguous(), norm);
}

int64_t model_input_size(const AugmentConfig& cfg, int64_t height, int64_t width) {
  return cfg.image_size > 0 ? cfg.image_size : std::max(height, width);
}

}  // namespace odyssey
