#include "data/augment_ops.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace odyssey {

torch::Tensor to_device_of(const torch::Tensor& t, const torch::Tensor& like,
                           std::optional<torch::ScalarType> dtype) {
  const auto c = dtype ? t.to(*dtype) : t;
  if (!like.is_cuda() || !c.device().is_cpu()) return c.to(like.device());
  return c.contiguous().pin_memory().to(like.device(), /*non_blocking=*/true);
}

namespace {

constexpr double kPi = 3.14159265358979323846;

torch::Tensor eye3(int64_t n) { return torch::eye(3, torch::kDouble).repeat({n, 1, 1}); }

// Rotations by theta (radians, float64 [B]) about the centre: [B,3,3], source = R * output.
torch::Tensor rotations(const torch::Tensor& theta) {
  auto c = torch::cos(theta), s = torch::sin(theta);
  auto rot = eye3(theta.size(0));
  rot.select(1, 0).select(1, 0).copy_(c), rot.select(1, 0).select(1, 1).copy_(-s);
  rot.select(1, 1).select(1, 0).copy_(s), rot.select(1, 1).select(1, 1).copy_(c);
  return rot;
}

// The homography taking the four corners c to c + d (DLT with h33 = 1), batched: [B,3,3].
torch::Tensor homography(const torch::Tensor& corners, const torch::Tensor& moved) {
  const int64_t b = corners.size(0);
  auto a = torch::zeros({b, 8, 8}, torch::kDouble);
  auto rhs = torch::zeros({b, 8}, torch::kDouble);
  for (int k = 0; k < 4; ++k) {
    auto x = corners.select(1, k).select(1, 0), y = corners.select(1, k).select(1, 1);
    auto u = moved.select(1, k).select(1, 0), v = moved.select(1, k).select(1, 1);
    auto r0 = a.select(1, 2 * k), r1 = a.select(1, 2 * k + 1);
    r0.select(1, 0).copy_(x), r0.select(1, 1).copy_(y), r0.select(1, 2).fill_(1);
    r0.select(1, 6).copy_(-x * u), r0.select(1, 7).copy_(-y * u);
    r1.select(1, 3).copy_(x), r1.select(1, 4).copy_(y), r1.select(1, 5).fill_(1);
    r1.select(1, 6).copy_(-x * v), r1.select(1, 7).copy_(-y * v);
    rhs.select(1, 2 * k).copy_(u), rhs.select(1, 2 * k + 1).copy_(v);
  }
  auto h = at::linalg_solve(a, rhs.unsqueeze(2), /*left=*/true).squeeze(2);
  return torch::cat({h, torch::ones({b, 1}, torch::kDouble)}, 1).view({b, 3, 3});
}

}  // namespace

torch::Tensor random_warps(int64_t height, int64_t width, const AugmentConfig& cfg, Draws& draws) {
  const int64_t b = draws.size();
  const double hw = width / 2.0, hh = height / 2.0;
  auto m = eye3(b);
  // Output -> perspective -> affine -> crop window: source = C * A * P * output.
  if (cfg.perspective > 0) {
    auto corners = torch::tensor({-hw, -hh, hw, -hh, hw, hh, -hw, hh}, torch::kDouble)
                       .view({1, 4, 2}).repeat({b, 1, 1});
    auto scale = torch::tensor({hw, hh}, torch::kDouble).view({1, 1, 2});
    auto moved = corners + (draws.columns(8).view({b, 4, 2}) * 2 - 1) * cfg.perspective * scale;
    m = homography(corners, moved);
  }
  if (cfg.rotate_deg > 0 || cfg.shear_deg > 0 || cfg.translate > 0) {
    auto theta = draws.uniform(-cfg.rotate_deg, cfg.rotate_deg) * (kPi / 180);
    auto shx = torch::tan(draws.uniform(-cfg.shear_deg, cfg.shear_deg) * (kPi / 180));
    auto shy = torch::tan(draws.uniform(-cfg.shear_deg, cfg.shear_deg) * (kPi / 180));
    auto tx = draws.uniform(-cfg.translate, cfg.translate) * width;
    auto ty = draws.uniform(-cfg.translate, cfg.translate) * height;
    auto rot = rotations(theta), shear = eye3(b), shift = eye3(b);
    shear.select(1, 0).select(1, 1).copy_(shx), shear.select(1, 1).select(1, 0).copy_(shy);
    shift.select(1, 0).select(1, 2).copy_(tx), shift.select(1, 1).select(1, 2).copy_(ty);
    m = torch::bmm(torch::bmm(shift, torch::bmm(rot, shear)), m);
  }
  if (cfg.rrc_scale_min > 0) {
    // torchvision's RandomResizedCrop.get_params: up to 10 draws of an area (a fraction of the
    // image's, uniform) and an aspect ratio (the crop's width / height in pixels, log-uniform in
    // [3/4, 4/3]); the first that fits inside the image is taken, else the image's centre at the
    // nearest ratio in that range. wf, hf: the crop's width and height as fractions of the image's.
    constexpr int64_t kAttempts = 10;
    const double ratio_lo = 3.0 / 4, ratio_hi = 4.0 / 3, aspect = static_cast<double>(width) / height;
    auto area = draws.columns(kAttempts) * (1 - cfg.rrc_scale_min) + cfg.rrc_scale_min;
    auto ratio = torch::exp(draws.columns(kAttempts) *
                                (std::log(ratio_hi) - std::log(ratio_lo)) + std::log(ratio_lo));
    auto wfs = torch::sqrt(area * ratio / aspect), hfs = torch::sqrt(area / ratio * aspect);
    auto fits = wfs.le(1.0).logical_and(hfs.le(1.0));
    auto first = fits.to(torch::kLong).argmax(1, /*keepdim=*/true);  // the first that fits
    auto any = fits.any(1);
    const double fallback_w = aspect > ratio_hi ? ratio_hi / aspect : 1.0;
    const double fallback_h = aspect < ratio_lo ? aspect / ratio_lo : 1.0;
    auto wf = torch::where(any, wfs.gather(1, first).squeeze(1), torch::full({b}, fallback_w, torch::kDouble));
    auto hf = torch::where(any, hfs.gather(1, first).squeeze(1), torch::full({b}, fallback_h, torch::kDouble));
    auto cx = (draws.uniform() * 2 - 1) * (1 - wf) * hw * any;  // fallback: centred
    auto cy = (draws.uniform() * 2 - 1) * (1 - hf) * hh * any;
    auto crop = eye3(b);
    crop.select(1, 0).select(1, 0).copy_(wf), crop.select(1, 1).select(1, 1).copy_(hf);
    crop.select(1, 0).select(1, 2).copy_(cx), crop.select(1, 1).select(1, 2).copy_(cy);
    m = torch::bmm(crop, m);
  }
  return m;
}

torch::Tensor warp(const torch::Tensor& images, const torch::Tensor& matrices) {
  return warp(images, matrices, images.size(2), images.size(3));
}

namespace {

// One bilinear grid_sample of every image through its matrix (no antialiasing).
torch::Tensor sample(const torch::Tensor& images, const torch::Tensor& matrices, int64_t out_h, int64_t out_w) {
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  // Pixel centres of the output, in pixels from the output's centre, homogeneous: [H*W, 3]; the
  // sampling grid is computed on the images' device (float64), from the matrices drawn on the CPU.
  const auto f64 = torch::TensorOptions(torch::kDouble).device(images.device());
  auto ys = torch::arange(out_h, f64) + 0.5 - out_h / 2.0;
  auto xs = torch::arange(out_w, f64) + 0.5 - out_w / 2.0;
  auto grid = torch::meshgrid({ys, xs}, "ij");
  auto pts = torch::stack({grid[1].reshape(-1), grid[0].reshape(-1),
                           torch::ones({out_h * out_w}, f64)}, 1);
  auto src = torch::matmul(to_device_of(matrices, images), pts.t());  // [B, 3, H*W]
  // A point inside the image but beyond its outermost pixel centres (the outer half pixel; the
  // outer pixels of an enlarged image) takes the edge pixel, as a resize does: grid_sample would
  // blend it with the zero padding, a dark frame around every upscaled image. Points outside the
  // image keep the zero fill (a rotation's corners).
  auto inside = [](const torch::Tensor& v, int64_t n) {
    return torch::where(v.abs() <= 1, v.clamp(-1 + 1.0 / n, 1 - 1.0 / n), v);
  };
  auto sx = inside(src.select(1, 0) / src.select(1, 2) / (w / 2.0), w);
  auto sy = inside(src.select(1, 1) / src.select(1, 2) / (h / 2.0), h);
  auto g = torch::stack({sx, sy}, 2).view({b, out_h, out_w, 2}).to(images.scalar_type());
  namespace F = torch::nn::functional;
  return F::grid_sample(images, g,
                        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

// How many times each image's warp can halve the source before sampling: floor(log2 s) for its
// scale s (source pixels per output pixel, the square root of the Jacobian's determinant at the
// output's centre), at least 0, while the halved image keeps a pixel.
std::vector<int64_t> mip_levels(const torch::Tensor& matrices, int64_t h, int64_t w) {
  const auto m = matrices.contiguous();
  const auto a = m.accessor<double, 3>();
  std::vector<int64_t> levels(static_cast<size_t>(m.size(0)), 0);
  for (int64_t i = 0; i < m.size(0); ++i) {
    const double z = a[i][2][2];  // at the origin: J = (A - t g^T) / z^2 for [A t; g^T z]
    const double j00 = (a[i][0][0] * z - a[i][0][2] * a[i][2][0]) / (z * z);
    const double j01 = (a[i][0][1] * z - a[i][0][2] * a[i][2][1]) / (z * z);
    const double j10 = (a[i][1][0] * z - a[i][1][2] * a[i][2][0]) / (z * z);
    const double j11 = (a[i][1][1] * z - a[i][1][2] * a[i][2][1]) / (z * z);
    const double scale = std::sqrt(std::abs(j00 * j11 - j01 * j10));
    int64_t level = 0;
    while (scale >= std::exp2(level + 1) && (std::min(h, w) >> (level + 1)) >= 1) ++level;
    levels[static_cast<size_t>(i)] = level;
  }
  return levels;
}

}  // namespace

torch::Tensor warp(const torch::Tensor& images, const torch::Tensor& matrices, int64_t out_h,
                   int64_t out_w) {
  // A warp that shrinks (a random-resized crop of a large image) samples an antialiased copy
  // halved L times (mip levels, as torchvision's PIL resize filters): bilinear sampling of the
  // full image alone would alias whatever repeats faster than two output pixels.
  const int64_t h = images.size(2), w = images.size(3);
  const auto levels = mip_levels(matrices, h, w);
  const int64_t top = *std::max_element(levels.begin(), levels.end());
  if (top == 0) return sample(images, matrices, out_h, out_w);
  auto out = torch::empty({images.size(0), images.size(1), out_h, out_w}, images.options());
  for (int64_t level = 0; level <= top; ++level) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < levels.size(); ++i)
      if (levels[i] == level) idx.push_back(static_cast<int64_t>(i));
    if (idx.empty()) continue;
    const auto sel = torch::tensor(idx, torch::kLong);
    const int64_t lh = std::max<int64_t>(1, h >> level), lw = std::max<int64_t>(1, w >> level);
    auto source = images.index_select(0, to_device_of(sel, images));
    if (level > 0) source = resize(source, lh, lw);
    // Source pixels of the full image -> of the smaller one (both about the centre).
    auto shrink = torch::eye(3, torch::kDouble);
    shrink[0][0] = static_cast<double>(lw) / w, shrink[1][1] = static_cast<double>(lh) / h;
    const auto m = torch::matmul(shrink, matrices.index_select(0, sel));
    out.index_copy_(0, to_device_of(sel, images), sample(source, m, out_h, out_w));
  }
  return out;
}

torch::Tensor resize(const torch::Tensor& images, int64_t out_h, int64_t out_w) {
  if (images.size(2) == out_h && images.size(3) == out_w) return images;
  namespace F = torch::nn::functional;
  return F::interpolate(images, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{out_h, out_w})
                                    .mode(torch::kBilinear)
                                    .align_corners(false)
                                    .antialias(true));
}

torch::Tensor luminance(const torch::Tensor& rgb) {
  const auto weights = torch::tensor({0.299, 0.587, 0.114}, torch::kDouble);
  auto w = to_device_of(weights, rgb, rgb.scalar_type()).view({1, 3, 1, 1});
  return (rgb * w).sum(1, /*keepdim=*/true);
}

torch::Tensor colour_jitter(const torch::Tensor& images, const AugmentConfig& cfg, Draws& draws) {
  const int64_t b = images.size(0);
  const bool rgb = images.size(1) == 3;
  auto per_image = [&](double x) {
    const auto factors = draws.uniform(1 - x, 1 + x);
    return to_device_of(factors, images, images.scalar_type()).view({b, 1, 1, 1});
  };
  // Brightness, contrast, saturation in this order (torchvision's ColorJitter draws an order per
  // call), each clipped to [0, 1] as torchvision's blends are: a brightened highlight is white
  // before contrast and saturation see it.
  auto x = images;
  if (cfg.brightness > 0) x = (x * per_image(cfg.brightness)).clamp_(0.0, 1.0);
  if (cfg.contrast > 0) {
    auto mean = (rgb ? luminance(x) : x).mean({1, 2, 3}, /*keepdim=*/true);
    x = ((x - mean) * per_image(cfg.contrast) + mean).clamp_(0.0, 1.0);
  }
  if (rgb && cfg.saturation > 0) {
    auto g = luminance(x);
    x = (g + (x - g) * per_image(cfg.saturation)).clamp_(0.0, 1.0);
  }
  if (rgb && cfg.hue > 0) {
    // Rotate the chroma plane of YIQ by the hue angle.
    auto to_yiq = torch::tensor({0.299, 0.587, 0.114, 0.596, -0.274, -0.322, 0.211, -0.523, 0.312},
                                torch::kDouble).view({3, 3});
    auto from_yiq = at::linalg_inv(to_yiq);
    auto angle = draws.uniform(-cfg.hue, cfg.hue) * (2 * kPi);
    auto rot = eye3(b);
    rot.select(1, 1).select(1, 1).copy_(torch::cos(angle)), rot.select(1, 1).select(1, 2).copy_(-torch::sin(angle));
    rot.select(1, 2).select(1, 1).copy_(torch::sin(angle)), rot.select(1, 2).select(1, 2).copy_(torch::cos(angle));
    const auto yiq_rotation = torch::matmul(torch::matmul(from_yiq, rot), to_yiq);  // [B,3,3]
    auto m = to_device_of(yiq_rotation, x, x.scalar_type());
    x = torch::einsum("bij,bjhw->bihw", {m, x});
  }
  if (rgb && cfg.grayscale_p > 0) {
    auto flags = to_device_of(draws.uniform() < cfg.grayscale_p, x).view({b, 1, 1, 1});
    x = torch::where(flags, luminance(x).expand_as(x), x);
  }
  return x.clamp(0.0, 1.0);
}

torch::Tensor random_erasing(const torch::Tensor& images, double p, Draws& draws,
                             ErasingForm form, bool noise) {
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  auto draw = draws.columns(40).view({b, 10, 4});  // fixed draws: deterministic count
  auto apply = draws.uniform();
  const auto noise_seeds = noise ? draws.seeds() : std::vector<uint64_t>{};
  auto d = draw.accessor<double, 3>();
  auto a = apply.accessor<double, 1>();
  // Each image's box as [y0, y0 + eh) x [x0, x0 + ew); an empty one (0, 0) when not erased.
  auto boxes = torch::zeros({4, b}, torch::kLong);
  auto box = boxes.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    if (a[i] >= p) continue;
    for (int t = 0; t < 10; ++t) {  // up to ten tries for a rectangle that fits
      const double area = (0.02 + d[i][t][0] * (0.33 - 0.02)) * h * w;
      const double ratio = std::exp(std::log(0.3) + d[i][t][1] * (std::log(3.3) - std::log(0.3)));
      const int64_t eh = std::lround(std::sqrt(area * ratio)), ew = std::lround(std::sqrt(area / ratio));
      if (eh < 1 || ew < 1 || eh >= h || ew >= w) continue;
      const int64_t y0 = static_cast<int64_t>(d[i][t][2] * (h - eh + 1));
      const int64_t x0 = static_cast<int64_t>(d[i][t][3] * (w - ew + 1));
      box[0][i] = y0, box[1][i] = y0 + eh, box[2][i] = x0, box[3][i] = x0 + ew;
      break;
    }
  }
  if (noise) {  // every box's values (each image's from its own stream) in one transfer
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t n = c * (box[1][i] - box[0][i]) * (box[3][i] - box[2][i]);
      if (n == 0) continue;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(noise_seeds[static_cast<size_t>(i)]);
      parts.push_back(torch::randn({n}, gen, torch::kFloat));
    }
    const auto values = to_device_of(parts.empty() ? torch::zeros({0}) : torch::cat(parts), images,
                                     images.scalar_type());
    auto out = images.clone(at::MemoryFormat::Preserve);
    int64_t at = 0;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t eh = box[1][i] - box[0][i], ew = box[3][i] - box[2][i];
      if (eh == 0) continue;
      out[i].narrow(1, box[0][i], eh).narrow(2, box[2][i], ew)
          .copy_(values.narrow(0, at, c * eh * ew).view({c, eh, ew}));
      at += c * eh * ew;
    }
    return out;
  }
  if (form == ErasingForm::kAuto) form = images.is_cuda() ? ErasingForm::kMasked : ErasingForm::kPerImage;
  if (form == ErasingForm::kMasked) {
    // One [B, 1, H, W] mask from the boxes (copied to the device in one transfer).
    const auto edges = to_device_of(boxes, images, torch::kLong).view({4, b, 1, 1, 1});
    const auto rows = torch::arange(h, edges.options()).view({1, 1, h, 1});
    const auto cols = torch::arange(w, edges.options()).view({1, 1, 1, w});
    const auto mask = (rows >= edges[0]) & (rows < edges[1]) & (cols >= edges[2]) & (cols < edges[3]);
    return images.clone(at::MemoryFormat::Preserve).masked_fill_(mask, 0);  // keeps channels-last
  }
  auto out = images.clone();
  for (int64_t i = 0; i < b; ++i)
    if (box[1][i] > box[0][i])
      out[i].narrow(1, box[0][i], box[1][i] - box[0][i])
          .narrow(2, box[2][i], box[3][i] - box[2][i])
          .zero_();
  return out;
}

Mixed mix_batch(const torch::Tensor& images, const torch::Tensor& labels, int64_t classes,
                const AugmentConfig& cfg, Draws& draws) {
  at::Generator& gen = draws.batch();
  Mixed m;
  auto onehot = to_device_of(torch::one_hot(labels, classes), images, images.scalar_type());
  auto coins = torch::rand({4}, gen, torch::kDouble);
  auto r = coins.accessor<double, 1>();
  const bool mix = cfg.mixes() && r[0] < cfg.mix_p;
  if (!mix) {
    m.images = images;
    m.targets = onehot;
    return m;
  }
  m.cutmix = cfg.cutmix_alpha > 0 && (cfg.mixup_alpha <= 0 || r[1] < 0.5);
  const double alpha = m.cutmix ? cfg.cutmix_alpha : cfg.mixup_alpha;
  auto g = at::_standard_gamma(torch::full({2}, alpha, torch::kDouble), gen);
  const double lam = g[0].item<double>() / (g[0].item<double>() + g[1].item<double>());
  auto other = images.flip(0);
  if (!m.cutmix) {
    m.images = images * lam + other * (1 - lam);
    m.lambda = lam;
  } else {
    const int64_t h = images.size(2), w = images.size(3);
    const double cut = std::sqrt(1 - lam);
    const int64_t ch = std::lround(h * cut), cw = std::lround(w * cut);
    const int64_t cy = static_cast<int64_t>(r[2] * h), cx = static_cast<int64_t>(r[3] * w);
    const int64_t y0 = std::clamp<int64_t>(cy - ch / 2, 0, h), y1 = std::clamp<int64_t>(cy + ch / 2, 0, h);
    const int64_t x0 = std::clamp<int64_t>(cx - cw / 2, 0, w), x1 = std::clamp<int64_t>(cx + cw / 2, 0, w);
    m.images = images.clone();
    if (y1 > y0 && x1 > x0)
      m.images.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0)
          .copy_(other.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0));
    m.lambda = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / (h * w);
  }
  m.targets = onehot * m.lambda + onehot.flip(0) * (1 - m.lambda);
  return m;
}

// ---- RandAugment ----

double rand_op_magnitude(RandOp op, int64_t m, int64_t height, int64_t width) {
  const double t = static_cast<double>(m) / 30.0;  // torch.linspace(lo, hi, 31)[m]
  switch (op) {
    case RandOp::kShearX:
    case RandOp::kShearY: return 0.3 * t;
    case RandOp::kTranslateX: return std::trunc(150.0 / 331.0 * width * t);  // int() in torchvision
    case RandOp::kTranslateY: return std::trunc(150.0 / 331.0 * height * t);
    case RandOp::kRotate: return 30.0 * t;
    case RandOp::kBrightness:
    case RandOp::kColor:
    case RandOp::kContrast:
    case RandOp::kSharpness: return 0.9 * t;
    case RandOp::kPosterize: return 8 - std::round(m / (30.0 / 4));  // bits kept
    case RandOp::kSolarize: return 255.0 * (1 - t);                  // threshold on 0..255
    default: return 0;
  }
}

double timm_op_magnitude(RandOp op, double level, int64_t height, int64_t width) {
  const double t = level / 10.0;  // timm's level / _MAX_LEVEL
  switch (op) {
    case RandOp::kShearX:
    case RandOp::kShearY: return 0.3 * t;
    case RandOp::kTranslateX: return 0.45 * t * width;  // TranslateXRel: translate_pct 0.45
    case RandOp::kTranslateY: return 0.45 * t * height;
    case RandOp::kRotate: return 30.0 * t;
    case RandOp::kBrightness:
    case RandOp::kColor:
    case RandOp::kContrast:
    case RandOp::kSharpness: return 0.9 * t;                         // 1 +- this
    case RandOp::kPosterize: return 4 - std::floor(4 * t);           // bits kept, 4 down to 0
    case RandOp::kSolarize: return 256 - std::floor(256 * t);        // threshold, 256 down to 0
    case RandOp::kSolarizeAdd: return std::floor(110 * t);           // added below level 128
    default: return 0;
  }
}

bool rand_op_signed(RandOp op) {
  switch (op) {
    case RandOp::kShearX: case RandOp::kShearY: case RandOp::kTranslateX:
    case RandOp::kTranslateY: case RandOp::kRotate: case RandOp::kBrightness:
    case RandOp::kColor: case RandOp::kContrast: case RandOp::kSharpness: return true;
    default: return false;
  }
}

namespace {

// 0..255 levels of [0, 1] images, as float.
torch::Tensor levels(const torch::Tensor& x) { return (x * 255).round_().clamp_(0, 255); }

// torchvision's _blend: ratio * a + (1 - ratio) * b, clamped to [0, 1]; ratio per image.
torch::Tensor blend(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& ratio) {
  auto r = to_device_of(ratio, a, a.scalar_type()).view({-1, 1, 1, 1});
  return (r * a + (1 - r) * b).clamp_(0, 1);
}

torch::Tensor grey(const torch::Tensor& x) { return x.size(1) == 3 ? luminance(x) : x; }

}  // namespace

torch::Tensor autocontrast(const torch::Tensor& images) {
  auto lo = images.amin({2, 3}, true), hi = images.amax({2, 3}, true);
  auto flat = hi <= lo;
  auto scale = torch::where(flat, torch::ones_like(hi), 1.0 / (hi - lo).clamp_min(1e-12));
  lo = torch::where(flat, torch::zeros_like(lo), lo);
  return ((images - lo) * scale).clamp_(0, 1);
}

torch::Tensor equalize(const torch::Tensor& images) {
  // Per image and channel, PIL's ImageOps.equalize as torchvision writes it: a lookup table from
  // the cumulative histogram in steps of (pixels - count of the top level) / 255.
  const int64_t b = images.size(0), c = images.size(1), hw = images.size(2) * images.size(3);
  auto v = levels(images).to(torch::kLong).reshape({b * c, hw});
  auto hist = torch::zeros({b * c, 256}, v.options()).scatter_add_(1, v, torch::ones_like(v));
  auto top = hist.gather(1, v.amax(1, true));
  auto step = torch::div(hw - top, 255, "floor");
  auto lut = torch::div(hist.cumsum(1) + torch::div(step, 2, "floor"), step.clamp_min(1), "floor");
  lut = torch::cat({torch::zeros({b * c, 1}, v.options()), lut.narrow(1, 0, 255)}, 1).clamp_(0, 255);
  auto out = torch::where(step == 0, v, lut.gather(1, v));
  return out.to(images.scalar_type()).div_(255).view_as(images);
}

torch::Tensor apply_rand_op(const torch::Tensor& x, RandOp op, const torch::Tensor& mag,
                            const std::vector<double>& fill) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  auto m = mag.to(torch::kDouble);
  // A warp whose uncovered area (zeros) takes the fill colour: where a warped all-ones image is
  // below 1, that share of the fill is added.
  auto filled_warp = [&](const torch::Tensor& mat) {
    auto out = warp(x, mat);
    if (fill.empty()) return out;
    auto covered = warp(torch::ones({b, 1, h, w}, x.options()), mat);
    auto colour = to_device_of(torch::tensor(fill, torch::kDouble), x, x.scalar_type()).view({1, -1, 1, 1});
    return out.add_((1 - covered) * colour);
  };
  auto geometric = [&](int row, int col, const torch::Tensor& value, const torch::Tensor& offset) {
    auto mat = eye3(b);
    mat.select(1, row).select(1, col).copy_(value);
    if (offset.defined()) mat.select(1, row).select(1, 2).copy_(offset);
    return filled_warp(mat);
  };
  switch (op) {
    case RandOp::kIdentity: return x;
    // Shears about the top-left corner, as torchvision (center=[0, 0]): the source of output
    // (x, y) is (x + m y, y) in corner coordinates; here coordinates are about the centre.
    case RandOp::kShearX: return geometric(0, 1, m, m * (h / 2.0));
    case RandOp::kShearY: return geometric(1, 0, m, m * (w / 2.0));
    case RandOp::kTranslateX: return geometric(0, 2, -m, {});  // content moves right by m
    case RandOp::kTranslateY: return geometric(1, 2, -m, {});
    case RandOp::kRotate: {  // counter-clockwise by m degrees, about the centre
      return filled_warp(rotations(m * (kPi / 180)));
    }
    case RandOp::kBrightness: return blend(x, torch::zeros_like(x), 1 + m);
    case RandOp::kColor: return blend(x, grey(x).expand_as(x), 1 + m);
    case RandOp::kContrast: return blend(x, grey(x).mean({1, 2, 3}, true).expand_as(x), 1 + m);
    case RandOp::kSharpness: {  // blend with the 3x3 smoothed image, borders kept
      if (h <= 2 || w <= 2) return x;
      auto k = torch::ones({3, 3}, x.options());
      k[1][1] = 5;
      k = (k / 13).view({1, 1, 3, 3}).repeat({x.size(1), 1, 1, 1});
      auto smooth = x.clone();
      smooth.narrow(2, 1, h - 2).narrow(3, 1, w - 2)
          .copy_(torch::nn::functional::conv2d(
                     x, k, torch::nn::functional::Conv2dFuncOptions().groups(x.size(1))));
      return blend(x, smooth, 1 + m);
    }
    case RandOp::kPosterize: {  // keep the top `bits` bits of each level
      auto q = to_device_of(torch::pow(2.0, 8 - m), x, x.scalar_type()).view({b, 1, 1, 1});
      return (torch::floor(levels(x) / q) * q).div_(255);
    }
    case RandOp::kSolarize: {  // levels at or above the threshold inverted
      auto t = to_device_of(m, x, x.scalar_type()).view({b, 1, 1, 1});
      return torch::where(levels(x) >= t, 1 - x, x);
    }
    case RandOp::kAutoContrast: return autocontrast(x);
    case RandOp::kEqualize: return equalize(x);
    case RandOp::kInvert: return 1 - x;
    case RandOp::kSolarizeAdd: {  // timm's solarize_add: levels below 128 raised by m, at most 255
      auto add = to_device_of(m, x, x.scalar_type()).view({b, 1, 1, 1});
      auto v = levels(x);
      return torch::where(v < 128, (v + add).clamp_max_(255), v).div_(255);
    }
  }
  return x;
}

torch::Tensor rand_augment(const torch::Tensor& images, const RandAugmentOptions& o, Draws& draws) {
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  const int64_t num_ops = o.timm ? static_cast<int64_t>(std::size(kTimmRandOps)) : kNumRandOps;
  auto x = images.clone();
  for (int64_t slot = 0; slot < o.n; ++slot) {
    auto ops = draws.randint(num_ops);
    auto signs = draws.randint(2);
    torch::Tensor applied, level;  // timm: whether each image's op applies (p 0.5), its level
    if (o.timm) {
      applied = draws.uniform() <= 0.5;  // timm skips when random() > prob
      level = torch::full({b}, static_cast<double>(o.m), torch::kDouble);
      if (o.mstd > 0) level += draws.normal() * o.mstd;
      level.clamp_(0, 10);
    }
    auto ops_a = ops.accessor<int64_t, 1>();
    std::vector<bool> takes(b, true);
    if (o.timm)
      for (int64_t i = 0; i < b; ++i) takes[i] = applied.accessor<bool, 1>()[i];
    for (int64_t k = 0; k < num_ops; ++k) {
      const RandOp op = o.timm ? kTimmRandOps[k] : static_cast<RandOp>(k);
      std::vector<int64_t> idx;
      for (int64_t i = 0; i < b; ++i)
        if (ops_a[i] == k && takes[i]) idx.push_back(i);
      if (idx.empty() || op == RandOp::kIdentity) continue;
      auto sel = torch::tensor(idx, torch::kLong);
      torch::Tensor mag;
      if (o.timm) {
        std::vector<double> v;
        const auto level_a = level.accessor<double, 1>();
        for (int64_t i : idx) v.push_back(timm_op_magnitude(op, level_a[i], h, w));
        mag = torch::tensor(v, torch::kDouble);
      } else {
        mag = torch::full({static_cast<int64_t>(idx.size())}, rand_op_magnitude(op, o.m, h, w),
                          torch::kDouble);
      }
      if (rand_op_signed(op)) mag = torch::where(signs.index_select(0, sel) == 1, -mag, mag);
      const auto at = to_device_of(sel, x);
      x.index_copy_(0, at, apply_rand_op(x.index_select(0, at), op, mag, o.fill));
    }
  }
  return x;
}

}  // namespace odyssey
