// The transforms of Winograd's F(2x2, 3x3) convolution algorithm (Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2015) on channels-last float images, and their adjoints for
// the backward pass. models/winograd_conv.h puts them together with 16 matrix products.
//
// Each 2x2 output tile of a 3x3, stride-1, padding-1 convolution reads a 4x4 input patch d.
// With V = B^T d B (per input channel), U = G g G^T (per filter) and M = sum over input channels
// of V U^T (a matrix product per point of the 4x4 transform domain, U stored filter-major), the
// tile is A^T M A: 16 multiplications per tile and channel pair instead of 36. The backward pass
// is the exact adjoint of these linear maps: dM = A dY A^T, dV = dM U, dU = dM^T V,
// dx += B dV B^T, dg = G^T dU G.
//
// Layouts: images [n][h][w][c] (channels-last); transform-domain matrices [16][tiles][c] with
// tile t = (image * tiles_h + tile_row) * tiles_w + tile_col; filters [c_out][3][3][c_in] (the
// channels-last weight's memory) and their transforms [16][c_out][c_in].
// Plain C++ (no LibTorch), vectorised across channels.
#pragma once

#include <cstdint>

namespace odyssey {

struct WinogradGeometry {
  int64_t n, h, w, c_in, c_out;
  int64_t tiles_h() const { return (h + 1) / 2; }
  int64_t tiles_w() const { return (w + 1) / 2; }
  int64_t tiles() const { return n * tiles_h() * tiles_w(); }
};

constexpr int64_t kWinogradPoints = 16;  // the 4x4 transform domain

// v [16][tiles][c_in] = B^T d B for tiles [t0, t1) of x [n][h][w][c_in] (zeros outside images).
void winograd_input_transform(const float* x, float* v, const WinogradGeometry& g, int64_t t0,
                              int64_t t1);

// u [16][c_out][c_in] = G f G^T for filters [k0, k1) of f [c_out][3][3][c_in].
void winograd_filter_transform(const float* f, float* u, const WinogradGeometry& g, int64_t k0,
                               int64_t k1);

// y [n][h][w][c_out] = A^T M A for tiles [t0, t1) of m [16][tiles][c_out], cropped at the edges.
void winograd_output_transform(const float* m, float* y, const WinogradGeometry& g, int64_t t0,
                               int64_t t1);

// dm [16][tiles][c_out] = A dY A^T for tiles [t0, t1) of dy [n][h][w][c_out] (zeros outside).
void winograd_output_adjoint(const float* dy, float* dm, const WinogradGeometry& g, int64_t t0,
                             int64_t t1);

// dx [n][h][w][c_in] += B dV B^T for every tile of images [n0, n1) of dv [16][tiles][c_in]
// (the 4x4 patches overlap within an image, never across images).
void winograd_input_adjoint(const float* dv, float* dx, const WinogradGeometry& g, int64_t n0,
                            int64_t n1);

// df [c_out][3][3][c_in] = G^T dU G for filters [k0, k1) of du [16][c_out][c_in].
void winograd_filter_adjoint(const float* du, float* df, const WinogradGeometry& g, int64_t k0,
                             int64_t k1);

}  // namespace odyssey
