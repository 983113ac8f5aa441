// Layer normalisation over the last dimension of a row-major [rows, d] float array, forward and
// backward, in plain C++ that the compiler vectorises (AVX-512, AVX2 or baseline x86-64, picked
// at load time); models/layer_norm.h uses these for CPU float32 tensors. Forward reads each row
// three times while it sits in L1: for its mean, for the residuals about that mean (their sum
// corrects the mean, their squares give the variance: the corrected two-pass algorithm, without
// the cancellation of E[x^2] - E[x]^2), for the output.
#pragma once

#include <cstdint>

namespace odyssey {

// y = (x - mean) * rstd * w + b per row; mean[r] and rstd[r] = 1 / sqrt(var + eps) (the biased
// variance, as LibTorch's) are written for backward. Rows [r0, r1) of the array.
void layer_norm_forward(const float* x, const float* w, const float* b, float eps, int64_t d,
                        int64_t r0, int64_t r1, float* y, float* mean, float* rstd);

// For rows [r0, r1): gx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)) with g = gy * w and
// xhat = (x - mean) * rstd (gx may be null: not wanted); gw[j] += gy * xhat and gb[j] += gy
// summed over those rows, in row order (gw, gb may be null).
void layer_norm_backward(const float* gy, const float* x, const float* mean, const float* rstd,
                         const float* w, int64_t d, int64_t r0, int64_t r1, float* gx, float* gw,
                         float* gb);

}  // namespace odyssey
