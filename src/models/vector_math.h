// Helpers for the plain C++ float kernels (models/*_kernels.cpp) that the compiler vectorises.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace odyssey {

// exp(x) in float, vectorisable (glibc's expf is not, without -ffast-math): rounding by adding
// 1.5 * 2^23, Cody-Waite reduction by ln 2 and Cephes' degree-6 polynomial on [-ln2/2, ln2/2],
// within a few ulp of expf. The input is clamped to [-87.3, 88.3], where 2^round(x / ln 2) is a
// normal float: exp(-87.3) ~ 1.2e-38, exp(88.3) ~ 2.2e38 (SiLU, sigmoid and the normal density
// are flat there). NaN stays NaN.
inline float vexp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  return p * __builtin_bit_cast(float, bits);
}

// For its scope, subnormal float results become zero and subnormal inputs count as zero (x86
// MXCSR FTZ and DAZ; nothing elsewhere). Put first in every kernel that calls vexp: GCC computes
// the clamped branches of vexp for every vector lane and blends (e.g. z / (1 + e^88.3) for each
// z), and a subnormal result in any lane, even one blended away, costs a microcode assist of
// some 150 cycles on Intel cores: bn_silu_forward ran 6x slower (4.3 against 0.7 ns per value).
// The only values it changes are those below 1.2e-38 in magnitude.
class FlushDenormals {
 public:
#if defined(__x86_64__) || defined(__i386__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
#else
  FlushDenormals() = default;
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

#if defined(__x86_64__) || defined(__i386__)
 private:
  static constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;
  unsigned saved_;
#endif
};

}  // namespace odyssey
