#include "models/softmax_kernels.h"

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64
#include "models/vector_math.h"

namespace odyssey {

ODYSSEY_VECTOR_CLONES
void softmax_rows(float* s, int64_t n, int64_t r0, int64_t r1) {
  const FlushDenormals ftz;
  for (int64_t r = r0; r < r1; ++r) {
    float* sr = s + r * n;
    float top = sr[0];
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < n; ++j) top = sr[j] > top ? sr[j] : top;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) {
      const float d = sr[j] - top;
      sr[j] = d < -87.3f ? 0.0f : vexp(d);  // below vexp's clamp: 0, as -inf (a mask) must give
      sum += sr[j];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) sr[j] *= inv;
  }
}

ODYSSEY_VECTOR_CLONES
void softmax_backward_rows(float* g, const float* p, int64_t n, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    float* gr = g + r * n;
    const float* pr = p + r * n;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; ++j) dot += gr[j] * pr[j];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) gr[j] = pr[j] * (gr[j] - dot);
  }
}

}  // namespace odyssey
