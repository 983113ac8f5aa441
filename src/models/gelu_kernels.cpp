#include "models/gelu_kernels.h"

#include <cmath>

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64
#include "models/vector_math.h"

namespace odyssey {
namespace {

struct Gaussian {
  float cdf2;     // 2 Phi(x) = 1 + erf(x / sqrt 2)
  float density;  // e^(-x^2 / 2)
};

// A&S 7.1.26 at z = |x| / sqrt 2: erfc(z) = t (a1 + t (a2 + ... a5 t)) e^(-z^2), t = 1 / (1 + p z).
inline Gaussian gaussian(float x) {
  const float z = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496739f;
  poly = poly * t + 0.254829592f;
  const float density = vexp(-z * z);
  const float erfc = poly * t * density;
  return {x < 0.0f ? erfc : 2.0f - erfc, density};
}

}  // namespace

ODYSSEY_VECTOR_CLONES
void gelu_forward(const float* x, float* out, int64_t n) {
  const FlushDenormals ftz;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * x[i] * gaussian(x[i]).cdf2;
}

ODYSSEY_VECTOR_CLONES
void gelu_backward(const float* grad_out, const float* x, float* grad_in, int64_t n) {
  const FlushDenormals ftz;
  constexpr float kInvSqrt2Pi = 0.39894228040143268f;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const Gaussian g = gaussian(x[i]);
    grad_in[i] = grad_out[i] * (0.5f * g.cdf2 + x[i] * kInvSqrt2Pi * g.density);
  }
}

}  // namespace odyssey
