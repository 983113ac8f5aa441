#include "models/batch_norm_fused.h"

#include <cmath>
#include <vector>

#include "models/batch_norm_kernels.h"
#include "models/custom_node.h"
#include "models/parallel_tasks.h"
#include "models/record_op.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

ImageGeometry geometry(const torch::Tensor& x) {
  return {x.size(0), x.size(2), x.size(3), x.size(1)};
}

// f(n0, n1) over the batch's images, in tasks of at least ~32k values.
template <class F>
void over_images(const ImageGeometry& g, F f) {
  parallel_tasks(g.n, g.image_pixels() * g.c, f);
}

// Per-channel sums of two per-image quantities, added in image order (the same result whatever
// the thread count): f(image, first, second) adds image's values to the two [C] arrays of T.
template <class T, class F>
std::pair<std::vector<double>, std::vector<double>> channel_sums(const ImageGeometry& g, F f) {
  std::vector<T> part(g.n * 2 * g.c, T(0));
  over_images(g, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) f(n, &part[n * 2 * g.c], &part[(n * 2 + 1) * g.c]);
  });
  std::vector<double> first(g.c, 0.0), second(g.c, 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c) {
      first[c] += part[n * 2 * g.c + c];
      second[c] += part[(n * 2 + 1) * g.c + c];
    }
  return {std::move(first), std::move(second)};
}

torch::Tensor channel_vector(const std::vector<double>& v) {
  auto t = torch::empty({static_cast<int64_t>(v.size())}, torch::kFloat);
  for (size_t c = 0; c < v.size(); ++c) t.data_ptr<float>()[c] = static_cast<float>(v[c]);
  return t;
}

struct Stats {
  torch::Tensor mean, invstd;  // float [C]
};

// The batch's statistics; updates the layer's running statistics as LibTorch does (the unbiased
// variance, weighted by momentum).
Stats batch_stats(const torch::Tensor& x, const ImageGeometry& g, BatchNorm2dImpl& bn, double momentum) {
  const float* xp = x.data_ptr<float>();
  const auto [sum, sumsq] = channel_sums<double>(g, [&](int64_t n, double* s, double* s2) {
    bn_image_sums(xp, g, n, s, s2);
  });
  const double count = static_cast<double>(g.n * g.image_pixels());
  std::vector<double> mean(g.c), invstd(g.c);
  float* rm = bn.running_mean.data_ptr<float>();
  float* rv = bn.running_var.data_ptr<float>();
  for (int64_t c = 0; c < g.c; ++c) {
    mean[c] = sum[c] / count;
    double var = sumsq[c] / count - mean[c] * mean[c];
    if (var < 0) var = 0;  // rounding; a NaN stays NaN, as in LibTorch
    invstd[c] = 1.0 / std::sqrt(var + bn.options.eps());
    rm[c] = static_cast<float>(momentum * mean[c] + (1 - momentum) * rm[c]);
    rv[c] = static_cast<float>(momentum * var * count / (count - 1) + (1 - momentum) * rv[c]);
  }
  return {channel_vector(mean), channel_vector(invstd)};
}

Stats running_stats(const BatchNorm2dImpl& bn) {
  // A copy: a later training forward updates the buffer in place, after this graph saved it.
  return {bn.running_mean.clone(), torch::rsqrt(bn.running_var + bn.options.eps())};
}

struct Affine {
  torch::Tensor scale, shift;  // float [C]: y = x * scale + shift normalises x
};

Affine affine(const Stats& stats, const torch::Tensor& weight, const torch::Tensor& bias) {
  const auto scale = (weight.detach() * stats.invstd).contiguous();
  return {scale, (bias.detach() - stats.mean * scale).contiguous()};
}

// What follows BatchNorm in the fused operator: its output shape and kernels.
struct PoolTail {  // ReLU, then a 2x2 max-pool of stride 2
  static constexpr const char* kName = "odyssey::bn_relu_pool";
  static std::vector<int64_t> out_shape(const ImageGeometry& g) { return {g.n, g.c, g.oh(), g.ow()}; }
  static constexpr auto forward = bn_relu_pool_forward;
  static constexpr auto grad_sums = bn_relu_pool_grad_sums;
  static constexpr auto backward = bn_relu_pool_backward;
  static torch::Tensor reference(BatchNorm2dImpl& bn, const torch::Tensor& x) {
    return torch::max_pool2d(bn.forward(x).relu_(), 2);
  }
};

struct SiluTail {
  static constexpr const char* kName = "odyssey::bn_silu";
  static std::vector<int64_t> out_shape(const ImageGeometry& g) { return {g.n, g.c, g.h, g.w}; }
  static constexpr auto forward = bn_silu_forward;
  static constexpr auto grad_sums = bn_silu_grad_sums;
  static constexpr auto backward = bn_silu_backward;
  static torch::Tensor reference(BatchNorm2dImpl& bn, const torch::Tensor& x) {
    return torch::silu(bn.forward(x));
  }
};

template <class Tail>
torch::Tensor forward_pass(const torch::Tensor& x, const Affine& f) {
  const auto g = geometry(x);
  torch::Tensor y = torch::empty(Tail::out_shape(g),
                                 x.options().memory_format(torch::MemoryFormat::ChannelsLast));
  over_images(g, [&](int64_t n0, int64_t n1) {
    Tail::forward(x.data_ptr<float>(), f.scale.data_ptr<float>(), f.shift.data_ptr<float>(),
                  y.data_ptr<float>(), g, n0, n1);
  });
  return y;
}

template <class Tail>
struct FusedBatchNorm : torch::autograd::Function<FusedBatchNorm<Tail>> {
  // x channels-last contiguous; mean, invstd: the statistics x is normalised with, the batch's own
  // (batch_stats: their dependence on x is part of the gradient) or the running ones.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& invstd,
                               bool batch_stats) {
    const Affine f = affine({mean, invstd}, weight, bias);
    ctx->save_for_backward({x, weight, mean, invstd, f.scale, f.shift});
    ctx->saved_data["batch_stats"] = batch_stats;
    return forward_pass<Tail>(x, f);
  }

  // dy: the gradient reaching BatchNorm's output through the tail (computed by the kernels).
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    first_derivative_only(Tail::kName,
                          "train without double backward, or use NCHW tensors (LibTorch's operators)");
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const bool batch_stats = ctx->saved_data["batch_stats"].toBool();
    const auto g = geometry(x);
    const auto gy = grads[0].contiguous(torch::MemoryFormat::ChannelsLast);
    const float *xp = x.data_ptr<float>(), *gp = gy.data_ptr<float>(), *mp = mean.data_ptr<float>(),
                *scale = saved[4].data_ptr<float>(), *shift = saved[5].data_ptr<float>();
    const auto [sum_dy, sum_dyx] = channel_sums<float>(g, [&](int64_t n, float* s, float* s2) {
      Tail::grad_sums(xp, gp, scale, shift, mp, g, n, s, s2);
    });
    // dx = w invstd (dy - mean(dy) - xhat mean(dy xhat)), xhat = (x - mean) invstd, with the
    // batch's statistics; w invstd dy with the running ones.
    const double count = static_cast<double>(g.n * g.image_pixels());
    std::vector<double> a(g.c), b(g.c), k(g.c), dw(g.c);
    for (int64_t c = 0; c < g.c; ++c) {
      const double is = invstd.data_ptr<float>()[c];
      a[c] = weight.data_ptr<float>()[c] * is;
      b[c] = batch_stats ? -a[c] * is * is * sum_dyx[c] / count : 0.0;
      k[c] = batch_stats ? -a[c] * sum_dy[c] / count - b[c] * mp[c] : 0.0;
      dw[c] = sum_dyx[c] * is;
    }
    torch::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      const auto at = channel_vector(a), bt = channel_vector(b), kt = channel_vector(k);
      dx = torch::empty(x.sizes(), x.options().memory_format(torch::MemoryFormat::ChannelsLast));
      over_images(g, [&](int64_t n0, int64_t n1) {
        Tail::backward(xp, gp, scale, shift, at.data_ptr<float>(), bt.data_ptr<float>(),
                       kt.data_ptr<float>(), dx.data_ptr<float>(), g, n0, n1);
      });
    }
    return {dx, channel_vector(dw), channel_vector(sum_dy), {}, {}, {}};
  }
};

bool plain_vector(const torch::Tensor& t, int64_t c) {
  return plain_cpu_float32(t) && t.dim() == 1 && t.size(0) == c && t.is_contiguous();
}

// The checks both fused operators share (the pool's window size apart).
bool fusable(const torch::Tensor& x, const BatchNorm2dImpl& bn) {
  if (!plain_cpu_float32(x) || x.dim() != 4 || !x.is_contiguous(torch::MemoryFormat::ChannelsLast))
    return false;
  const auto g = geometry(x);
  return g.n > 0 && g.image_pixels() > 0 && !(bn.is_training() && bn.synced()) &&
         (!bn.is_training() || g.n * g.image_pixels() > 1) && plain_vector(bn.weight, g.c) &&
         plain_vector(bn.bias, g.c) && plain_vector(bn.running_mean, g.c) &&
         plain_vector(bn.running_var, g.c);
}

template <class Tail>
torch::Tensor fused(const torch::Tensor& x, BatchNorm2dImpl& bn) {
  RecordedOp record(Tail::kName, [&] { return std::vector<c10::IValue>{x}; });
  const bool training = bn.is_training();
  Stats stats;
  if (training) {
    torch::NoGradGuard no_grad;  // the running statistics are buffers
    stats = batch_stats(x, geometry(x), bn, bn.count_batch());
  } else {
    stats = running_stats(bn);
  }
  const bool grad = torch::GradMode::is_enabled() &&
                    (x.requires_grad() || bn.weight.requires_grad() || bn.bias.requires_grad());
  torch::Tensor y;
  if (grad)
    y = FusedBatchNorm<Tail>::apply(x, bn.weight, bn.bias, stats.mean, stats.invstd, training);
  else
    y = forward_pass<Tail>(x, affine(stats, bn.weight, bn.bias));
  record.set_output(y);
  return y;
}

}  // namespace

bool bn_relu_pool_fused(const torch::Tensor& x, const BatchNorm2dImpl& bn) {
  return fusable(x, bn) && x.size(2) >= 2 && x.size(3) >= 2;
}

torch::Tensor bn_relu_pool(const torch::Tensor& x, BatchNorm2dImpl& bn) {
  return bn_relu_pool_fused(x, bn) ? fused<PoolTail>(x, bn) : PoolTail::reference(bn, x);
}

bool bn_silu_fused(const torch::Tensor& x, const BatchNorm2dImpl& bn) { return fusable(x, bn); }

torch::Tensor bn_silu(const torch::Tensor& x, BatchNorm2dImpl& bn) {
  return bn_silu_fused(x, bn) ? fused<SiluTail>(x, bn) : SiluTail::reference(bn, x);
}

}  // namespace odyssey
