#include "train/sgd_kernels.h"

#include <cmath>

// Built for AVX-512, AVX with FMA, and baseline x86-64; compiled with -ffp-contract=off so that
// only the explicit std::fma fuse.
#include "models/vector_clones.h"

namespace odyssey {

ODYSSEY_FMA_CLONES
void sgd_update(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n,
                const SgdFactors& f) {
  const float wd = f.weight_decay, m = f.momentum, rate = f.rate;
  if (m == 0.0f) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float d = wd != 0.0f ? std::fma(p[i], wd, g[i]) : g[i];
      p[i] = std::fma(d, rate, p[i]);
    }
    return;
  }
  if (f.nesterov) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float d = wd != 0.0f ? std::fma(p[i], wd, g[i]) : g[i];
      const float b = buf[i] * m + d;  // two roundings, as mul_ then add_
      buf[i] = b;
      p[i] = std::fma(std::fma(b, m, d), rate, p[i]);
    }
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float d = wd != 0.0f ? std::fma(p[i], wd, g[i]) : g[i];
    const float b = buf[i] * m + d;
    buf[i] = b;
    p[i] = std::fma(b, rate, p[i]);
  }
}

}  // namespace odyssey
