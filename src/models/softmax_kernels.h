// Softmax along rows of a row-major [rows, n] float array, in place, forward and backward, in
// plain C++ that the compiler vectorises (AVX-512, AVX2 or baseline x86-64, picked at load time);
// models/attention.cpp's CPU path uses these for its attention probabilities (rows of T tokens:
// 3x faster than LibTorch 1.13's at T = 50, whose vector loop leaves a scalar tail per row).
// exp is models/vector_math.h's (a few ulp from expf); a score more than 87.3 below its row's
// maximum (exp < 1.2e-38, -inf included) gives exactly 0. A row holding NaN or +inf, or only
// -inf, gives NaN, as LibTorch's.
#pragma once

#include <cstdint>

namespace odyssey {

// s[r, :] = exp(s[r, :] - max) / sum, rows [r0, r1).
void softmax_rows(float* s, int64_t n, int64_t r0, int64_t r1);

// From the probabilities p and, in g, the gradient of p: g[r, :] = p * (g - sum_j g p), the
// gradient of softmax's input, rows [r0, r1).
void softmax_backward_rows(float* g, const float* p, int64_t n, int64_t r0, int64_t r1);

}  // namespace odyssey
