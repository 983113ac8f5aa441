#include "models/batch_norm_kernels.h"

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64
#include "models/vector_math.h"

namespace odyssey {
namespace {

// The channel vectors of a 2x2 window's pixels, row-major, for output pixel (i, j) of image n.
struct Window {
  const float* p[4];
  Window(const float* x, const ImageGeometry& g, int64_t n, int64_t i, int64_t j) {
    p[0] = x + ((n * g.h + 2 * i) * g.w + 2 * j) * g.c;
    p[1] = p[0] + g.c;
    p[2] = p[0] + g.w * g.c;
    p[3] = p[2] + g.c;
  }
};

// b x, and 0 where b is 0: in evaluation b is 0 and the input's value is no part of its gradient,
// not even a NaN (LibTorch's gradient there is finite).
inline float times_x(float b, float x) { return b == 0.0f ? 0.0f : b * x; }

// dx of a pixel outside every window (an odd last row or column), where dy = 0.
void outside_windows(const float* x, const float* b, const float* k, float* dx,
                     const ImageGeometry& g, int64_t n, int64_t row, int64_t col) {
  const int64_t off = ((n * g.h + row) * g.w + col) * g.c;
  const float* __restrict px = x + off;
  float* __restrict pd = dx + off;
  for (int64_t c = 0; c < g.c; ++c) pd[c] = times_x(b[c], px[c]) + k[c];
}

// The first maximum of a 2x2 window's normalised values v0-v3 (row-major), found as LibTorch's
// max-pool finds it: a later value replaces the maximum if larger or NaN. t1, t2, t3: whether v1,
// v2, v3 replaced it (the last one set is the maximum's position; none: v0). Branch-free.
struct WindowMax {
  float m;
  bool t1, t2, t3;
  WindowMax(float v0, float v1, float v2, float v3) {
    t1 = (v1 > v0) | (v1 != v1);
    m = t1 ? v1 : v0;
    t2 = (v2 > m) | (v2 != v2);
    m = t2 ? v2 : m;
    t3 = (v3 > m) | (v3 != v3);
    m = t3 ? v3 : m;
  }
  bool active() const { return !(m <= 0.0f); }  // ReLU passes it (NaN too, as LibTorch's does)
};

// dy * silu'(z): silu'(z) = s (1 + z (1 - s)), s = sigmoid(z).
inline float silu_grad(float z, float dy) {
  const float s = 1.0f / (1.0f + vexp(-z));
  return dy * s * (1.0f + z * (1.0f - s));
}

int64_t out_offset(const ImageGeometry& g, int64_t n, int64_t i, int64_t j) {
  return ((n * g.oh() + i) * g.ow() + j) * g.c;
}

}  // namespace

ODYSSEY_VECTOR_CLONES
void bn_image_sums(const float* x, const ImageGeometry& g, int64_t image, double* sum,
                   double* sumsq) {
  const int64_t C = g.c;
  const float* px = x + image * g.image_pixels() * C;
  for (int64_t p = 0; p < g.image_pixels(); ++p, px += C) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const double v = px[c];
      sum[c] += v;
      sumsq[c] += v * v;
    }
  }
}

ODYSSEY_VECTOR_CLONES
void bn_relu_pool_forward(const float* x, const float* scale, const float* shift, float* y,
                          const ImageGeometry& g, int64_t n0, int64_t n1) {
  const int64_t C = g.c;
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t i = 0; i < g.oh(); ++i)
      for (int64_t j = 0; j < g.ow(); ++j) {
        const Window win(x, g, n, i, j);
        const float *__restrict p0 = win.p[0], *__restrict p1 = win.p[1],
                    *__restrict p2 = win.p[2], *__restrict p3 = win.p[3];
        float* __restrict o = y + out_offset(g, n, i, j);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const WindowMax w(p0[c] * scale[c] + shift[c], p1[c] * scale[c] + shift[c],
                            p2[c] * scale[c] + shift[c], p3[c] * scale[c] + shift[c]);
          o[c] = w.active() ? w.m : 0.0f;
        }
      }
}

ODYSSEY_VECTOR_CLONES
void bn_relu_pool_grad_sums(const float* x, const float* gy, const float* scale,
                            const float* shift, const float* mean, const ImageGeometry& g,
                            int64_t image, float* sum_dy, float* sum_dyx) {
  const int64_t C = g.c;
  for (int64_t i = 0; i < g.oh(); ++i)
    for (int64_t j = 0; j < g.ow(); ++j) {
      const Window win(x, g, image, i, j);
      const float *__restrict p0 = win.p[0], *__restrict p1 = win.p[1],
                  *__restrict p2 = win.p[2], *__restrict p3 = win.p[3];
      const float* __restrict d = gy + out_offset(g, image, i, j);
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const float x0 = p0[c], x1 = p1[c], x2 = p2[c], x3 = p3[c], dc = d[c];
        const WindowMax w(x0 * scale[c] + shift[c], x1 * scale[c] + shift[c],
                          x2 * scale[c] + shift[c], x3 * scale[c] + shift[c]);
        float xa = w.t1 ? x1 : x0;  // the maximum's x, as selects
        xa = w.t2 ? x2 : xa;
        xa = w.t3 ? x3 : xa;
        const float dy = w.active() ? dc : 0.0f;
        sum_dy[c] += dy;
        sum_dyx[c] += dy * (xa - mean[c]);
      }
    }
}

ODYSSEY_VECTOR_CLONES
void bn_relu_pool_backward(const float* x, const float* gy, const float* scale, const float* shift,
                           const float* a, const float* b, const float* k, float* dx,
                           const ImageGeometry& g, int64_t n0, int64_t n1) {
  const int64_t C = g.c;
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t i = 0; i < g.oh(); ++i) {
      for (int64_t j = 0; j < g.ow(); ++j) {
        const Window win(x, g, n, i, j);
        const int64_t off = win.p[0] - x;
        const float *__restrict p0 = win.p[0], *__restrict p1 = win.p[1],
                    *__restrict p2 = win.p[2], *__restrict p3 = win.p[3];
        float *__restrict d0 = dx + off, *__restrict d1 = d0 + C, *__restrict d2 = d0 + g.w * C,
                          *__restrict d3 = d2 + C;
        const float* __restrict d = gy + out_offset(g, n, i, j);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float x0 = p0[c], x1 = p1[c], x2 = p2[c], x3 = p3[c], ad = a[c] * d[c];
          const WindowMax w(x0 * scale[c] + shift[c], x1 * scale[c] + shift[c],
                            x2 * scale[c] + shift[c], x3 * scale[c] + shift[c]);
          // a dy to the first maximum's pixel, as selects (branch-free: vectorises)
          const float g0 = w.active() ? ad : 0.0f;
          const float g3 = w.t3 ? g0 : 0.0f, r3 = w.t3 ? 0.0f : g0;
          const float g2 = w.t2 ? r3 : 0.0f, r2 = w.t2 ? 0.0f : r3;
          const float g1 = w.t1 ? r2 : 0.0f, h0 = w.t1 ? 0.0f : r2;
          const float bc = b[c], kc = k[c];
          d0[c] = times_x(bc, x0) + kc + h0;
          d1[c] = times_x(bc, x1) + kc + g1;
          d2[c] = times_x(bc, x2) + kc + g2;
          d3[c] = times_x(bc, x3) + kc + g3;
        }
      }
      if (g.w % 2 == 1) {
        outside_windows(x, b, k, dx, g, n, 2 * i, g.w - 1);
        outside_windows(x, b, k, dx, g, n, 2 * i + 1, g.w - 1);
      }
    }
    if (g.h % 2 == 1)
      for (int64_t col = 0; col < g.w; ++col) outside_windows(x, b, k, dx, g, n, g.h - 1, col);
  }
}

ODYSSEY_VECTOR_CLONES
void bn_silu_forward(const float* x, const float* scale, const float* shift, float* y,
                     const ImageGeometry& g, int64_t n0, int64_t n1) {
  const FlushDenormals ftz;
  const int64_t C = g.c;
  for (int64_t p = n0 * g.image_pixels(); p < n1 * g.image_pixels(); ++p) {
    const float* __restrict px = x + p * C;
    float* __restrict py = y + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float z = px[c] * scale[c] + shift[c];
      py[c] = z / (1.0f + vexp(-z));
    }
  }
}

ODYSSEY_VECTOR_CLONES
void bn_silu_grad_sums(const float* x, const float* gy, const float* scale, const float* shift,
                       const float* mean, const ImageGeometry& g, int64_t image, float* sum_dz,
                       float* sum_dzx) {
  const FlushDenormals ftz;
  const int64_t C = g.c;
  for (int64_t p = image * g.image_pixels(); p < (image + 1) * g.image_pixels(); ++p) {
    const float* __restrict px = x + p * C;
    const float* __restrict pg = gy + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float xc = px[c], dz = silu_grad(xc * scale[c] + shift[c], pg[c]);
      sum_dz[c] += dz;
      sum_dzx[c] += dz * (xc - mean[c]);
    }
  }
}

ODYSSEY_VECTOR_CLONES
void bn_silu_backward(const float* x, const float* gy, const float* scale, const float* shift,
                      const float* a, const float* b, const float* k, float* dx,
                      const ImageGeometry& g, int64_t n0, int64_t n1) {
  const FlushDenormals ftz;
  const int64_t C = g.c;
  for (int64_t p = n0 * g.image_pixels(); p < n1 * g.image_pixels(); ++p) {
    const float* __restrict px = x + p * C;
    const float* __restrict pg = gy + p * C;
    float* __restrict pd = dx + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float xc = px[c], dz = silu_grad(xc * scale[c] + shift[c], pg[c]);
      pd[c] = a[c] * dz + times_x(b[c], xc) + k[c];
    }
  }
}

}  // namespace odyssey
