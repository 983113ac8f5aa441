#include "data/normalize_u8.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"

namespace odyssey {

namespace {

// [C, 256] float: value v of channel c is what to_float_nchw and (x - mean) / std make of byte v
// (the same ops on a batch of every byte value: the same float rounding).
torch::Tensor byte_table(const Normalize& norm, int64_t c) {
  auto bytes = torch::arange(256, torch::kLong).to(torch::kByte).view({1, 1, 256, 1}).expand({1, 1, 256, c});
  auto x = to_float_nchw(bytes.contiguous());  // [1, C, 1, 256]
  auto mean = torch::tensor(norm.mean, torch::kDouble).to(torch::kFloat).view({1, c, 1, 1});
  auto stdv = torch::tensor(norm.std, torch::kDouble).to(torch::kFloat).view({1, c, 1, 1});
  return x.sub_(mean).div_(stdv).reshape({c, 256}).contiguous();
}

}  // namespace

torch::Tensor normalize_u8(const torch::Tensor& images_u8, const Normalize& norm, int64_t pad,
                           const torch::Tensor& dy, const torch::Tensor& dx, const torch::Tensor& flips) {
  ODY_CHECK(images_u8.is_cpu() && images_u8.scalar_type() == torch::kByte && images_u8.dim() == 4,
            "normalize_u8: images must be uint8 [B,H,W,C] on the CPU", "");
  const auto in = images_u8.contiguous();
  const int64_t b = in.size(0), h = in.size(1), w = in.size(2), c = in.size(3);
  ODY_CHECK(static_cast<int64_t>(norm.mean.size()) == c && static_cast<int64_t>(norm.std.size()) == c,
            ODY_MSG("normalize_u8: " << norm.mean.size() << " means and " << norm.std.size()
                                     << " standard deviations for " << c << " channels"),
            "");
  const bool crop = pad > 0;
  ODY_CHECK(!crop || (dy.numel() == b && dx.numel() == b), "normalize_u8: one crop offset per image", "");
  ODY_CHECK(!flips.defined() || flips.numel() == b, "normalize_u8: one flip flag per image", "");
  const auto dyc = crop ? dy.to(torch::kLong).contiguous() : torch::Tensor();
  const auto dxc = crop ? dx.to(torch::kLong).contiguous() : torch::Tensor();
  const auto fc = flips.defined() ? flips.to(torch::kBool).contiguous() : torch::Tensor();
  const auto table = byte_table(norm, c);
  auto out = torch::empty({b, c, h, w}, torch::kFloat);

  const uint8_t* src = in.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  const float* lut = table.data_ptr<float>();
  const int64_t* dya = crop ? dyc.data_ptr<int64_t>() : nullptr;
  const int64_t* dxa = crop ? dxc.data_ptr<int64_t>() : nullptr;
  const bool* fa = fc.defined() ? fc.data_ptr<bool>() : nullptr;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, h * w * c));
  at::parallel_for(0, b, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t sy = crop ? dya[i] - pad : 0, sx = crop ? dxa[i] - pad : 0;  // out (0,0) reads in (sy,sx)
      const bool flip = fa != nullptr && fa[i];
      // Cropped columns [x0, x1) read the image (x + sx); the rest is padding. A flip puts
      // cropped column xc at w - 1 - xc: the image lands on [w - x1, w - x0).
      const int64_t x0 = std::clamp<int64_t>(-sx, 0, w), x1 = std::clamp<int64_t>(w - sx, 0, w);
      const int64_t lo = flip ? w - x1 : x0, hi = flip ? w - x0 : x1;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* t = lut + ch * 256;
        const float fill = t[0];
        float* row = dst + (i * c + ch) * h * w;
        for (int64_t y = 0; y < h; ++y, row += w) {
          const int64_t from = y + sy;
          if (from < 0 || from >= h || lo >= hi) {
            std::fill(row, row + w, fill);
            continue;
          }
          const uint8_t* line = src + ((i * h + from) * w) * c + ch;
          std::fill(row, row + lo, fill);
          if (flip) {
            for (int64_t x = lo; x < hi; ++x) row[x] = t[line[(w - 1 - x + sx) * c]];
          } else if (c == 1) {
            const uint8_t* p = line + sx;
            for (int64_t x = lo; x < hi; ++x) row[x] = t[p[x]];
          } else {
            for (int64_t x = lo; x < hi; ++x) row[x] = t[line[(x + sx) * c]];
          }
          std::fill(row + hi, row + w, fill);
        }
      }
    }
  });
  return out;
}

}  // namespace odyssey
