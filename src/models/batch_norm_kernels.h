// Kernels of models/batch_norm_fused.h on float32 channels-last images x [n][h][w][c]: BatchNorm's
// statistics; BatchNorm, ReLU and a 2x2 max-pool of stride 2 in one pass (pooled output y
// [n][h/2][w/2][c]) and its backward pass in two (no index is kept: the backward finds the maxima
// again); BatchNorm and SiLU in one pass and its backward in two. Vector loops run across
// channels, branch-free; each function covers whole images, so callers split the batch across
// threads by image.
#pragma once

#include <cstdint>

namespace odyssey {

struct ImageGeometry {
  int64_t n, h, w, c;
  int64_t oh() const { return h / 2; }  // max-pool's floor mode: an odd last row/column is dropped
  int64_t ow() const { return w / 2; }
  int64_t image_pixels() const { return h * w; }
};

// Per channel of image `image`: sum[c] += the sum of x, sumsq[c] += the sum of x * x.
void bn_image_sums(const float* x, const ImageGeometry& g, int64_t image, double* sum, double* sumsq);

// Images [n0, n1): y = the 2x2 window's maximum of relu(x * scale + shift) per channel.
void bn_relu_pool_forward(const float* x, const float* scale, const float* shift, float* y,
                          const ImageGeometry& g, int64_t n0, int64_t n1);

// The backward pass finds each window's maximum again from x, scale and shift, with the forward's
// arithmetic (the first maximum, NaN winning, as LibTorch's max-pool; a maximum <= 0 is ReLU's
// zero and gets no gradient): dy = gy at that pixel, zero elsewhere.

// Per channel of image `image`: sum_dy[c] += the sum of dy, sum_dyx[c] += the sum of dy * (x - mean).
void bn_relu_pool_grad_sums(const float* x, const float* gy, const float* scale,
                            const float* shift, const float* mean, const ImageGeometry& g,
                            int64_t image, float* sum_dy, float* sum_dyx);

// Images [n0, n1): dx = a * dy + b * x + k per channel (BatchNorm's input gradient written as an
// affine map of dy and x).
void bn_relu_pool_backward(const float* x, const float* gy, const float* scale, const float* shift,
                           const float* a, const float* b, const float* k, float* dx,
                           const ImageGeometry& g, int64_t n0, int64_t n1);

// Images [n0, n1): y = silu(x * scale + shift), silu(z) = z / (1 + exp(-z)).
void bn_silu_forward(const float* x, const float* scale, const float* shift, float* y,
                     const ImageGeometry& g, int64_t n0, int64_t n1);

// The backward pass recomputes z = x * scale + shift: dz = gy * silu'(z).
// Per channel of image `image`: sum_dz[c] += the sum of dz, sum_dzx[c] += the sum of dz * (x - mean).
void bn_silu_grad_sums(const float* x, const float* gy, const float* scale, const float* shift,
                       const float* mean, const ImageGeometry& g, int64_t image, float* sum_dz,
                       float* sum_dzx);

// Images [n0, n1): dx = a * dz + b * x + k per channel.
void bn_silu_backward(const float* x, const float* gy, const float* scale, const float* shift,
                      const float* a, const float* b, const float* k, float* dx,
                      const ImageGeometry& g, int64_t n0, int64_t n1);

}  // namespace odyssey
