// The exact (erf) GELU on float arrays, forward and backward, in plain C++ that the compiler
// vectorises (AVX-512, AVX2 or baseline x86-64, picked at load time): one pass each way, 1.6x
// faster than LibTorch 1.13's CPU GELU on a vit_ti4 MLP activation (memory-bound there);
// models/gelu.h uses these for CPU float32 tensors.
//
// erf is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, the approximation LibTorch's
// vectorised erf uses), with 1 + erf(x / sqrt 2) formed as erfc for negative x so the left tail
// keeps its relative accuracy; exp is a Cephes-style polynomial. Results agree with the exact
// GELU to 2e-7 x max(1, |x|) forward and 3e-7 backward; NaN stays NaN, +-inf give inf and NaN
// as LibTorch's; results below 1.2e-38 in magnitude are zero (models/vector_math.h).
#pragma once

#include <cstdint>

namespace odyssey {

// out[i] = x[i] * Phi(x[i]), Phi the standard normal distribution function.
void gelu_forward(const float* x, float* out, int64_t n);

// grad_in[i] = grad_out[i] * (Phi(x[i]) + x[i] * phi(x[i])), phi the standard normal density.
void gelu_backward(const float* grad_out, const float* x, float* grad_in, int64_t n);

}  // namespace odyssey
