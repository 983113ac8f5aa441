#include "models/channel_scale_kernels.h"

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64

namespace odyssey {

ODYSSEY_VECTOR_CLONES
void channel_scale_backward(const float* x, const float* dy, const float* s, float* dx, float* ds,
                            int64_t channels, int64_t pixels, bool channels_last) {
  if (channels_last) {  // vector loops across channels, pixel after pixel
    float* __restrict acc = ds;
    for (int64_t c = 0; c < channels; ++c) acc[c] = 0.0f;
    for (int64_t p = 0; p < pixels; ++p) {
      const float* __restrict px = x + p * channels;
      const float* __restrict pg = dy + p * channels;
      float* __restrict pd = dx + p * channels;
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) {
        pd[c] = pg[c] * s[c];
        acc[c] += pg[c] * px[c];
      }
    }
    return;
  }
  for (int64_t c = 0; c < channels; ++c) {  // one plane at a time
    const float* __restrict px = x + c * pixels;
    const float* __restrict pg = dy + c * pixels;
    float* __restrict pd = dx + c * pixels;
    const float sc = s[c];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t p = 0; p < pixels; ++p) {
      pd[p] = pg[p] * sc;
      sum += pg[p] * px[p];
    }
    ds[c] = sum;
  }
}

}  // namespace odyssey
