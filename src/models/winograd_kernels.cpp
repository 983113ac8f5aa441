#include "models/winograd_kernels.h"

#include <vector>

#include "models/vector_clones.h"  // each kernel built for AVX-512, AVX2 and baseline x86-64

namespace odyssey {
namespace {

struct Tile {
  int64_t image, row, col;  // row, col: the tile's top-left output pixel
};

Tile tile_of(int64_t t, const WinogradGeometry& g) {
  const int64_t per_image = g.tiles_h() * g.tiles_w(), rem = t % per_image;
  return {t / per_image, 2 * (rem / g.tiles_w()), 2 * (rem % g.tiles_w())};
}

// Pointers to the channel vectors of a tile's n x n pixels in image memory [n][h][w][channels]:
// the 4x4 input patch (n = 4, from one pixel up and left of the tile) or the 2x2 output tile
// (n = 2); pixels outside the image get `outside` (zeros to read, or a sink to write).
template <int N, class T>
void tile_pixels(T* image, const Tile& tile, int64_t channels, const WinogradGeometry& g,
                 T* outside, T* (&pixel)[N * N]) {
  const int64_t origin = N == 4 ? -1 : 0;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const int64_t r = tile.row + origin + i, c = tile.col + origin + j;
      const bool in = r >= 0 && r < g.h && c >= 0 && c < g.w;
      pixel[i * N + j] = in ? image + ((tile.image * g.h + r) * g.w + c) * channels : outside;
    }
}

}  // namespace

ODYSSEY_VECTOR_CLONES
void winograd_input_transform(const float* x, float* v, const WinogradGeometry& g, int64_t t0,
                              int64_t t1) {
  const int64_t C = g.c_in, step = g.tiles() * C;
  const std::vector<float> zeros(C, 0.0f);
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tile = tile_of(t, g);
    const float* p[16];
    tile_pixels<4>(x, tile, C, g, zeros.data(), p);
    float* __restrict o = v + t * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float d[16], b[16];
      for (int k = 0; k < 16; ++k) d[k] = p[k][c];
      for (int j = 0; j < 4; ++j) {  // b = B^T d
        b[j] = d[j] - d[8 + j];
        b[4 + j] = d[4 + j] + d[8 + j];
        b[8 + j] = d[8 + j] - d[4 + j];
        b[12 + j] = d[4 + j] - d[12 + j];
      }
      for (int i = 0; i < 4; ++i) {  // v = b B
        o[(i * 4 + 0) * step + c] = b[i * 4] - b[i * 4 + 2];
        o[(i * 4 + 1) * step + c] = b[i * 4 + 1] + b[i * 4 + 2];
        o[(i * 4 + 2) * step + c] = b[i * 4 + 2] - b[i * 4 + 1];
        o[(i * 4 + 3) * step + c] = b[i * 4 + 1] - b[i * 4 + 3];
      }
    }
  }
}

ODYSSEY_VECTOR_CLONES
void winograd_filter_transform(const float* f, float* u, const WinogradGeometry& g, int64_t k0,
                               int64_t k1) {
  const int64_t C = g.c_in, step = g.c_out * C;
  for (int64_t k = k0; k < k1; ++k) {
    const float* __restrict in = f + k * 9 * C;  // [3][3][C]
    float* __restrict o = u + k * C;              // point p at o + p * step
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float gg[12];  // G f: 4 x 3
      for (int s = 0; s < 3; ++s) {
        const float a = in[s * C + c], b = in[(3 + s) * C + c], e = in[(6 + s) * C + c];
        gg[s] = a;
        gg[3 + s] = 0.5f * (a + b + e);
        gg[6 + s] = 0.5f * (a - b + e);
        gg[9 + s] = e;
      }
      for (int i = 0; i < 4; ++i) {  // (G f) G^T
        const float a = gg[i * 3], b = gg[i * 3 + 1], e = gg[i * 3 + 2];
        o[(i * 4 + 0) * step + c] = a;
        o[(i * 4 + 1) * step + c] = 0.5f * (a + b + e);
        o[(i * 4 + 2) * step + c] = 0.5f * (a - b + e);
        o[(i * 4 + 3) * step + c] = e;
      }
    }
  }
}

ODYSSEY_VECTOR_CLONES
void winograd_output_transform(const float* m, float* y, const WinogradGeometry& g, int64_t t0,
                               int64_t t1) {
  const int64_t K = g.c_out, step = g.tiles() * K;
  std::vector<float> sink(K);  // a tile's outputs outside the image (written, never read)
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tile = tile_of(t, g);
    float* q[4];
    tile_pixels<2>(y, tile, K, g, sink.data(), q);
    const float* __restrict in = m + t * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) {
      float e[16], s[8];
      for (int i = 0; i < 16; ++i) e[i] = in[i * step + k];
      for (int j = 0; j < 4; ++j) {  // s = A^T M
        s[j] = e[j] + e[4 + j] + e[8 + j];
        s[4 + j] = e[4 + j] - e[8 + j] - e[12 + j];
      }
      for (int a = 0; a < 2; ++a) {  // y = s A
        q[a * 2][k] = s[a * 4] + s[a * 4 + 1] + s[a * 4 + 2];
        q[a * 2 + 1][k] = s[a * 4 + 1] - s[a * 4 + 2] - s[a * 4 + 3];
      }
    }
  }
}

ODYSSEY_VECTOR_CLONES
void winograd_output_adjoint(const float* dy, float* dm, const WinogradGeometry& g, int64_t t0,
                             int64_t t1) {
  const int64_t K = g.c_out, step = g.tiles() * K;
  const std::vector<float> zeros(K, 0.0f);
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tile = tile_of(t, g);
    const float* p[4];
    tile_pixels<2>(dy, tile, K, g, zeros.data(), p);
    float* __restrict o = dm + t * K;
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) {
      const float y00 = p[0][k], y01 = p[1][k], y10 = p[2][k], y11 = p[3][k];
      // e = A dY (4 x 2), then dM = e A^T: row (a, b) -> (a, a + b, a - b, -b).
      const float e[8] = {y00, y01, y00 + y10, y01 + y11, y00 - y10, y01 - y11, -y10, -y11};
      for (int i = 0; i < 4; ++i) {
        const float a = e[i * 2], b = e[i * 2 + 1];
        o[(i * 4 + 0) * step + k] = a;
        o[(i * 4 + 1) * step + k] = a + b;
        o[(i * 4 + 2) * step + k] = a - b;
        o[(i * 4 + 3) * step + k] = -b;
      }
    }
  }
}

ODYSSEY_VECTOR_CLONES
void winograd_input_adjoint(const float* dv, float* dx, const WinogradGeometry& g, int64_t n0,
                            int64_t n1) {
  const int64_t C = g.c_in, step = g.tiles() * C, per_image = g.tiles_h() * g.tiles_w();
  std::vector<float> sink(C);  // patch pixels in the zero padding (written, never read)
  for (int64_t t = n0 * per_image; t < n1 * per_image; ++t) {
    const Tile tile = tile_of(t, g);
    float* q[16];
    tile_pixels<4>(dx, tile, C, g, sink.data(), q);
    const float* __restrict in = dv + t * C;
    // Every padding pixel lands in `sink`, whose contents are never read.
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float e[16], f[16];
      for (int i = 0; i < 16; ++i) e[i] = in[i * step + c];
      for (int j = 0; j < 4; ++j) {  // f = B dV
        f[j] = e[j];
        f[4 + j] = e[4 + j] - e[8 + j] + e[12 + j];
        f[8 + j] = e[4 + j] + e[8 + j] - e[j];
        f[12 + j] = -e[12 + j];
      }
      for (int i = 0; i < 4; ++i) {  // dx += f B^T
        q[i * 4 + 0][c] += f[i * 4];
        q[i * 4 + 1][c] += f[i * 4 + 1] - f[i * 4 + 2] + f[i * 4 + 3];
        q[i * 4 + 2][c] += f[i * 4 + 1] + f[i * 4 + 2] - f[i * 4];
        q[i * 4 + 3][c] += -f[i * 4 + 3];
      }
    }
  }
}

ODYSSEY_VECTOR_CLONES
void winograd_filter_adjoint(const float* du, float* df, const WinogradGeometry& g, int64_t k0,
                             int64_t k1) {
  const int64_t C = g.c_in, step = g.c_out * C;
  for (int64_t k = k0; k < k1; ++k) {
    const float* __restrict in = du + k * C;  // point p at in + p * step
    float* __restrict o = df + k * 9 * C;     // [3][3][C]
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      float e[16], h[12];
      for (int i = 0; i < 16; ++i) e[i] = in[i * step + c];
      for (int j = 0; j < 4; ++j) {  // h = G^T dU (3 x 4)
        h[j] = e[j] + 0.5f * (e[4 + j] + e[8 + j]);
        h[4 + j] = 0.5f * (e[4 + j] - e[8 + j]);
        h[8 + j] = 0.5f * (e[4 + j] + e[8 + j]) + e[12 + j];
      }
      for (int r = 0; r < 3; ++r) {  // dg = h G
        const float* hr = h + r * 4;
        o[(r * 3 + 0) * C + c] = hr[0] + 0.5f * (hr[1] + hr[2]);
        o[(r * 3 + 1) * C + c] = 0.5f * (hr[1] - hr[2]);
        o[(r * 3 + 2) * C + c] = 0.5f * (hr[1] + hr[2]) + hr[3];
      }
    }
  }
}

}  // namespace odyssey
