#include "data/augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "data/augment_ops.h"

namespace odyssey {

torch::Tensor to_float_nchw(const torch::Tensor& images_u8) {
  return images_u8.permute({0, 3, 1, 2}).to(torch::kFloat).div_(255.0).contiguous();
}

namespace {
torch::Tensor normalize(torch::Tensor x, const Normalize& norm) {
  const int64_t c = x.size(1);
  auto mean = torch::tensor(norm.mean, torch::kDouble).to(torch::kFloat).view({1, c, 1, 1});
  auto stdv = torch::tensor(norm.std, torch::kDouble).to(torch::kFloat).view({1, c, 1, 1});
  return x.sub_(mean).div_(stdv);
}
}  // namespace

torch::Tensor flip_where(const torch::Tensor& images, const torch::Tensor& flags) {
  auto mask = flags.view({-1, 1, 1, 1});
  return torch::where(mask, images.flip({3}), images);
}

torch::Tensor crop_padded(const torch::Tensor& images, int64_t pad, const torch::Tensor& dy,
                          const torch::Tensor& dx) {
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  auto padded = torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0.0);
  auto out = torch::empty_like(images);
  auto dya = dy.accessor<int64_t, 1>();
  auto dxa = dx.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b; ++i)
    out[i].copy_(padded[i].narrow(1, dya[i], h).narrow(2, dxa[i], w));
  return out;
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
  if (cfg.warps()) x = warp(x, random_warps(b, x.size(2), x.size(3), cfg, gen));
  if (cfg.hflip) x = flip_where(x, torch::rand({b}, gen) < 0.5);
  if (cfg.brightness > 0 || cfg.contrast > 0 || cfg.saturation > 0 || cfg.hue > 0 ||
      cfg.grayscale_p > 0)
    x = colour_jitter(x, cfg, gen);
  x = normalize(std::move(x), norm);
  if (cfg.erasing_p > 0) x = random_erasing(x, cfg.erasing_p, gen);
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

}  // namespace odyssey
