#include "models/depthwise_kernels.h"

#include <algorithm>
#include <vector>

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64

namespace odyssey {
namespace {

// The layout that turns every filter tap into one long contiguous loop, whatever the stride and
// however small the plane (EfficientNet's late planes are 2x2 to 8x8, far too short to vectorise
// row by row).
//
// Grid: the channel's planes for the whole batch stacked into one zero-padded image. A grid row
// is pad_w zeros then the input row (width wr = in_w + pad_w, rounded up to the stride): the
// next row's leading zeros are this row's right padding. Image n's rows start at grid row
// n * bh + pad_h, bh = in_h + pad_h rounded up to the stride: the zero rows between two images
// are the bottom padding of one and the top padding of the next.
//
// Phases: the grid split into stride_h x stride_w phases (phase (a, b) holds grid rows a, a + s,
// ... and columns b, b + s, ...), each hq x wq. Output (row r, column c) of the stacked output
// (rows of wq, bh / stride_h rows per image) reads tap (kh, kw) at phase (kh % s, kw % s), row
// r + kh / s, column c + kw / s, so a tap's filter gradient is one dot product of the stacked
// output-gradient rows with the phases from offset(kh, kw). Output gradients outside an image's
// out_h x out_w are stored as zeros, so the junk they meet adds nothing.
struct Layout {
  explicit Layout(const DepthwiseGeometry& g, int64_t batch)
      : g(g),
        wr(round_up(std::max(g.in_w + g.pad_w, g.out_w * g.stride_w), g.stride_w)),
        bh(round_up(std::max(g.in_h + g.pad_h, g.out_h * g.stride_h), g.stride_h)),
        wq(wr / g.stride_w),
        rows_per_image(bh / g.stride_h),
        hq(batch * rows_per_image + (g.pad_h + g.kernel_h) / g.stride_h + 1),
        phase(hq * wq),
        span(batch * rows_per_image * wq),
        size(g.stride_h * g.stride_w * phase + g.kernel_w) {}

  static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

  int64_t offset(int64_t kh, int64_t kw) const {
    return ((kh % g.stride_h) * g.stride_w + kw % g.stride_w) * phase + (kh / g.stride_h) * wq +
           kw / g.stride_w;
  }
  // Where grid row `row` (column 0) starts in the phases.
  int64_t grid_row(int64_t row) const {
    return (row % g.stride_h) * g.stride_w * phase + (row / g.stride_h) * wq;
  }

  const DepthwiseGeometry& g;
  int64_t wr, bh, wq, rows_per_image, hq, phase, span, size;
};

// Per-thread scratch, grown on demand (one channel of a batch: a few hundred KB at most).
float* scratch(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}
thread_local std::vector<float> t_phases, t_rows;

// The channel's input planes into the zeroed phases.
void copy_planes(const float* planes, float* phases, const ChannelPlanes& cp, const Layout& l) {
  const int64_t s = l.g.stride_w, p = l.g.pad_w, w = l.g.in_w;
  std::fill(phases, phases + l.size, 0.0f);
  for (int64_t n = 0; n < cp.batch; ++n) {
    for (int64_t ih = 0; ih < l.g.in_h; ++ih) {
      const float* row = planes + n * cp.in_stride + ih * w;
      float* grid = phases + l.grid_row(n * l.bh + l.g.pad_h + ih);
      for (int64_t b = 0; b < s; ++b) {  // grid columns b, b + s, ... hold input columns
        float* dst = grid + b * l.phase;   // iw = j * s + b - p
        int64_t j = b - p >= 0 ? 0 : (p - b + s - 1) / s;
        for (int64_t iw = j * s + b - p; iw < w; iw += s, ++j) dst[j] = row[iw];
      }
    }
  }
}

// The channel's output-gradient planes into the zeroed stacked rows.
void copy_outputs(const float* planes, float* rows, const ChannelPlanes& cp, const Layout& l) {
  std::fill(rows, rows + l.span, 0.0f);
  for (int64_t n = 0; n < cp.batch; ++n) {
    for (int64_t oh = 0; oh < l.g.out_h; ++oh) {
      const float* plane_row = planes + n * cp.out_stride + oh * l.g.out_w;
      std::copy(plane_row, plane_row + l.g.out_w, rows + (n * l.rows_per_image + oh) * l.wq);
    }
  }
}

}  // namespace

ODYSSEY_VECTOR_CLONES
void depthwise_grad_filter_channel(const float* grad_out, const float* input, float* grad_filter,
                                   const ChannelPlanes& planes, const DepthwiseGeometry& g) {
  const Layout l(g, planes.batch);
  float* __restrict phases = scratch(t_phases, l.size);
  float* __restrict rows = scratch(t_rows, l.span);
  const int64_t span = l.span;
  copy_outputs(grad_out, rows, planes, l);
  copy_planes(input, phases, planes, l);
  constexpr int64_t kChunk = 4096;  // float partial sums, added up in double
  for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      const float* __restrict src = phases + l.offset(kh, kw);
      double total = 0.0;
      for (int64_t j0 = 0; j0 < span; j0 += kChunk) {
        const int64_t j1 = std::min(span, j0 + kChunk);
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t j = j0; j < j1; ++j) acc += rows[j] * src[j];
        total += acc;
      }
      grad_filter[kh * g.kernel_w + kw] = static_cast<float>(total);
    }
  }
}

ODYSSEY_VECTOR_CLONES
void depthwise_grad_filter_nhwc(const float* grad_out, const float* input, float* grad_filter,
                                int64_t batch, int64_t channels, int64_t c0, int64_t c1,
                                const DepthwiseGeometry& g) {
  const int64_t taps = g.kernel_h * g.kernel_w, width = c1 - c0;
  std::vector<float> part(taps * width);          // one image's sums, [tap][channel]
  std::vector<double> total(taps * width, 0.0);   // over the batch
  for (int64_t n = 0; n < batch; ++n) {
    std::fill(part.begin(), part.end(), 0.0f);
    float* __restrict acc = part.data();
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const float* __restrict go =
            grad_out + ((n * g.out_h + oh) * g.out_w + ow) * channels + c0;
        for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
          const int64_t ih = oh * g.stride_h - g.pad_h + kh;
          if (ih < 0 || ih >= g.in_h) continue;
          for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
            const int64_t iw = ow * g.stride_w - g.pad_w + kw;
            if (iw < 0 || iw >= g.in_w) continue;
            const float* __restrict in = input + ((n * g.in_h + ih) * g.in_w + iw) * channels + c0;
            float* __restrict a = acc + (kh * g.kernel_w + kw) * width;
#pragma omp simd
            for (int64_t c = 0; c < width; ++c) a[c] += go[c] * in[c];
          }
        }
      }
    }
    for (int64_t i = 0; i < taps * width; ++i) total[i] += part[i];
  }
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t c = 0; c < width; ++c)
      grad_filter[(c0 + c) * taps + t] = static_cast<float>(total[t * width + c]);
}

}  // namespace odyssey
