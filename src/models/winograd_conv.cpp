#include "models/winograd_conv.h"

#include <algorithm>
#include <atomic>

#include "common/error.h"
#include "models/cpu_gemm.h"
#include "models/custom_node.h"
#include "models/parallel_tasks.h"
#include "models/record_op.h"
#include "models/winograd_kernels.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

std::atomic<int> g_mode{-1};  // -1: "auto"

WinogradGeometry geometry(const torch::Tensor& x, const torch::Tensor& w) {
  return {x.size(0), x.size(2), x.size(3), x.size(1), w.size(0)};
}

// c[p] = op(a[p]) op(b[p]) (+ c[p] when accumulating) for the 16 transform points; a, b, c
// contiguous [16][rows][cols], op(a[p]) m x k, op(b[p]) k x n.
void products(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const torch::Tensor& a,
              const torch::Tensor& b, torch::Tensor& c, bool accumulate = false) {
  if (cpu_gemm() == CpuGemm::kOneDnn) {
    const float *ap = a.data_ptr<float>(), *bp = b.data_ptr<float>();
    float* cp = c.data_ptr<float>();
    for (int64_t p = 0; p < kWinogradPoints; ++p)
      onednn_sgemm(ta, tb, m, n, k, 1.0f, ap + p * m * k, ta ? m : k, bp + p * k * n, tb ? k : n,
                   accumulate ? 1.0f : 0.0f, cp + p * m * n, n);
  } else {
    const auto opa = ta ? a.transpose(1, 2) : a, opb = tb ? b.transpose(1, 2) : b;
    if (accumulate) c.baddbmm_(opa, opb);
    else at::bmm_out(c, opa, opb);
  }
}

// The filters' channels-last memory [K][3][3][C] (no copy when they are channels-last).
torch::Tensor filters_cl(const torch::Tensor& w) {
  return w.permute({0, 2, 3, 1}).contiguous();
}

// U [16, K, C] from the filters [K, C, 3, 3].
torch::Tensor filter_transform(const torch::Tensor& w, const WinogradGeometry& g) {
  const auto f = filters_cl(w);
  auto u = torch::empty({kWinogradPoints, g.c_out, g.c_in}, w.options());
  parallel_tasks(g.c_out, 64 * g.c_in, [&](int64_t k0, int64_t k1) {
    winograd_filter_transform(f.data_ptr<float>(), u.data_ptr<float>(), g, k0, k1);
  });
  return u;
}

// The images go through the transforms and products in chunks whose transform-domain matrices
// (16 points x the chunk's tiles x the wider channel count) hold about this many bytes: they stay
// in cache from one transform to the next, and below glibc's mmap threshold (32 MB at most),
// above which every block comes as fresh pages. Whole batches at once, ResNet's 64-channel 3x3
// layers ran 2-3x slower than LibTorch's at 32-56 px, mostly in page faults.
constexpr int64_t kChunkBytes = int64_t{4} << 20;

// Images [n0, n0 + n) of the batch, as a batch of their own.
struct Chunk {
  WinogradGeometry g;
  int64_t n0;
  int64_t x_offset() const { return n0 * g.h * g.w * g.c_in; }   // into [n][h][w][c_in]
  int64_t y_offset() const { return n0 * g.h * g.w * g.c_out; }  // into [n][h][w][c_out]
};

template <class F>
void for_each_chunk(const WinogradGeometry& g, F f) {
  const int64_t per_image = kWinogradPoints * g.tiles_h() * g.tiles_w() *
                            std::max(g.c_in, g.c_out) * int64_t{sizeof(float)};
  const int64_t per_chunk = std::clamp<int64_t>(kChunkBytes / per_image, 1, g.n);
  for (int64_t n0 = 0; n0 < g.n; n0 += per_chunk) {
    WinogradGeometry c = g;
    c.n = std::min(per_chunk, g.n - n0);
    f(Chunk{c, n0});
  }
}

// V [16, tiles, C] of the chunk's images of channels-last x.
torch::Tensor input_transform(const torch::Tensor& x, const Chunk& c) {
  auto v = torch::empty({kWinogradPoints, c.g.tiles(), c.g.c_in}, x.options());
  parallel_tasks(c.g.tiles(), 64 * c.g.c_in, [&](int64_t t0, int64_t t1) {
    winograd_input_transform(x.data_ptr<float>() + c.x_offset(), v.data_ptr<float>(), c.g, t0,
                             t1);
  });
  return v;
}

// y (channels-last) = the convolution of channels-last x with the filters whose transform is u.
torch::Tensor forward_conv(const torch::Tensor& x, const torch::Tensor& u,
                           const WinogradGeometry& g) {
  auto y = torch::empty({g.n, g.c_out, g.h, g.w},
                        x.options().memory_format(torch::MemoryFormat::ChannelsLast));
  for_each_chunk(g, [&](const Chunk& c) {
    const auto v = input_transform(x, c);
    auto m = torch::empty({kWinogradPoints, c.g.tiles(), g.c_out}, x.options());
    products(false, true, c.g.tiles(), g.c_out, g.c_in, v, u, m);  // M = V U^T
    parallel_tasks(c.g.tiles(), 32 * g.c_out, [&](int64_t t0, int64_t t1) {
      winograd_output_transform(m.data_ptr<float>(), y.data_ptr<float>() + c.y_offset(), c.g, t0,
                                t1);
    });
  });
  return y;
}

struct WinogradConv : torch::autograd::Function<WinogradConv> {
  // x channels-last contiguous.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w) {
    const auto g = geometry(x, w);
    auto u = filter_transform(w, g);
    ctx->save_for_backward({x, w, u});
    return forward_conv(x, u, g);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    first_derivative_only("odyssey::conv2d_winograd",
                          "train without double backward, or set train.cpu_conv = \"libtorch\"");
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &u = saved[2];
    const auto g = geometry(x, w);
    const auto gy = grads[0].contiguous(torch::MemoryFormat::ChannelsLast);
    const bool want_x = ctx->needs_input_grad(0), want_w = ctx->needs_input_grad(1);
    torch::Tensor gx, gw, du;
    // (torch::zeros ignores a memory format in its options)
    if (want_x)
      gx = torch::empty(x.sizes(), x.options().memory_format(torch::MemoryFormat::ChannelsLast))
               .zero_();
    if (want_w) du = torch::empty({kWinogradPoints, g.c_out, g.c_in}, x.options());
    for_each_chunk(g, [&](const Chunk& c) {
      const int64_t tiles = c.g.tiles();
      auto dm = torch::empty({kWinogradPoints, tiles, g.c_out}, x.options());
      parallel_tasks(tiles, 32 * g.c_out, [&](int64_t t0, int64_t t1) {
        winograd_output_adjoint(gy.data_ptr<float>() + c.y_offset(), dm.data_ptr<float>(), c.g, t0,
                                t1);
      });
      if (want_x) {
        auto dv = torch::empty({kWinogradPoints, tiles, g.c_in}, x.options());
        products(false, false, tiles, g.c_in, g.c_out, dm, u, dv);  // dV = dM U
        parallel_tasks(c.g.n, 64 * g.c_in * tiles / c.g.n, [&](int64_t n0, int64_t n1) {
          winograd_input_adjoint(dv.data_ptr<float>(), gx.data_ptr<float>() + c.x_offset(), c.g, n0,
                                 n1);
        });
      }
      if (want_w) {  // dU = sum over chunks of dM^T V
        const auto v = input_transform(x, c);
        products(true, false, g.c_out, g.c_in, tiles, dm, v, du, /*accumulate=*/c.n0 > 0);
      }
    });
    if (want_w) {
      gw = torch::empty_like(w);  // the filters' own strides
      const bool cl = gw.permute({0, 2, 3, 1}).is_contiguous();
      auto df = cl ? gw : torch::empty({g.c_out, 3, 3, g.c_in}, w.options());  // [K][3][3][C]
      parallel_tasks(g.c_out, 64 * g.c_in, [&](int64_t k0, int64_t k1) {
        winograd_filter_adjoint(du.data_ptr<float>(), df.data_ptr<float>(), g, k0, k1);
      });
      if (!cl) gw.permute({0, 2, 3, 1}).copy_(df);
    }
    return {gx, gw};
  }
};

}  // namespace

void set_cpu_conv(const std::string& mode, const std::string& key) {
  if (mode == "auto") g_mode = -1;
  else if (mode == "winograd") g_mode = static_cast<int>(CpuConv::kWinograd);
  else if (mode == "libtorch") g_mode = static_cast<int>(CpuConv::kLibTorch);
  else ODY_FAIL(ODY_MSG(key << " = \"" << mode << "\" is not a choice"),
                "use \"auto\", \"winograd\" or \"libtorch\"");
}

CpuConv cpu_conv() {
  const int mode = g_mode.load();
  if (mode >= 0) return static_cast<CpuConv>(mode);
  return cpu_gemm() == CpuGemm::kOneDnn ? CpuConv::kWinograd : CpuConv::kLibTorch;
}

CpuConv cpu_conv_for(bool channels_last) {
  return channels_last ? cpu_conv() : CpuConv::kLibTorch;
}

std::string cpu_conv_name(CpuConv c) {
  return c == CpuConv::kWinograd ? "Winograd F(2x2, 3x3)" : "LibTorch";
}

bool winograd_conv_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  return cpu_conv() == CpuConv::kWinograd && plain_cpu_float32(x) && plain_cpu_float32(weight) &&
         x.dim() == 4 && weight.dim() == 4 && weight.size(1) == x.size(1) &&
         weight.size(2) == 3 && weight.size(3) == 3 && x.numel() > 0 && weight.numel() > 0 &&
         x.is_contiguous(torch::MemoryFormat::ChannelsLast);
}

torch::Tensor conv3x3(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!winograd_conv_applies(x, weight)) return torch::conv2d(x, weight, {}, 1, 1);
  RecordedOp record("odyssey::conv2d_winograd", [&] { return std::vector<c10::IValue>{x, weight}; });
  const bool grad = torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  torch::Tensor y;
  if (grad) {
    y = WinogradConv::apply(x, weight);
  } else {
    const auto g = geometry(x, weight);
    y = forward_conv(x, filter_transform(weight, g), g);
  }
  record.set_output(y);
  return y;
}

}  // namespace odyssey
