#include "models/layer_norm_kernels.h"

#include <cmath>

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64

namespace odyssey {

ODYSSEY_VECTOR_CLONES
void layer_norm_forward(const float* x, const float* w, const float* b, float eps, int64_t d,
                        int64_t r0, int64_t r1, float* y, float* mean, float* rstd) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < d; ++j) sum += xr[j];
    float mu = sum * inv_d;
    float s1 = 0.0f, s2 = 0.0f;  // the residuals' sum and sum of squares
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t j = 0; j < d; ++j) {
      const float r = xr[j] - mu;
      s1 += r;
      s2 += r * r;
    }
    const float c = s1 * inv_d;  // the first mean's rounding error, corrected
    mu += c;
    const float var = s2 * inv_d - c * c;
    const float rs = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + eps);
#pragma omp simd
    for (int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mu) * rs * w[j] + b[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

ODYSSEY_VECTOR_CLONES
void layer_norm_backward(const float* gy, const float* x, const float* mean, const float* rstd,
                         const float* w, int64_t d, int64_t r0, int64_t r1, float* gx, float* gw,
                         float* gb) {
  const float inv_d = 1.0f / static_cast<float>(d);
  for (int64_t r = r0; r < r1; ++r) {
    const float *gyr = gy + r * d, *xr = x + r * d;
    const float mu = mean[r], rs = rstd[r];
    if (gx) {
      float s1 = 0.0f, s2 = 0.0f;  // sums of g and of g * xhat
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t j = 0; j < d; ++j) {
        const float g = gyr[j] * w[j];
        s1 += g;
        s2 += g * (xr[j] - mu) * rs;
      }
      const float a = s1 * inv_d, c = s2 * inv_d;
      float* gxr = gx + r * d;
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) gxr[j] = rs * (gyr[j] * w[j] - a - (xr[j] - mu) * rs * c);
    }
    if (gw) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) gw[j] += gyr[j] * (xr[j] - mu) * rs;
    }
    if (gb) {
#pragma omp simd
      for (int64_t j = 0; j < d; ++j) gb[j] += gyr[j];
    }
  }
}

}  // namespace odyssey
