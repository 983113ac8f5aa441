#include "models/channel_scale.h"

#include "models/channel_scale_kernels.h"
#include "models/custom_node.h"
#include "models/parallel_tasks.h"
#include "models/record_op.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct ChannelMean : torch::autograd::Function<ChannelMean> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    ctx->saved_data["sizes"] = x.sizes().vec();
    return x.mean({2, 3}, /*keepdim=*/true);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const double pixels = static_cast<double>(sizes[2] * sizes[3]);
    return {(grads[0] / pixels).expand(sizes)};  // a broadcast view: nothing written at full size
  }
};

struct ChannelScale : torch::autograd::Function<ChannelScale> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& s) {
    ctx->save_for_backward({x, s});
    return x * s;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    first_derivative_only("odyssey::channel_scale", "train without double backward");
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &s = saved[1];
    const bool cl = is_channels_last(x);
    const auto format = cl ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const auto gy = grads[0].contiguous(format);
    const auto sc = s.contiguous();
    const int64_t n = x.size(0), c = x.size(1), pixels = x.size(2) * x.size(3);
    auto gx = torch::empty(x.sizes(), x.options().memory_format(format));
    auto gs = torch::empty({n, c, 1, 1}, s.options());
    const float *xp = x.data_ptr<float>(), *gp = gy.data_ptr<float>(), *sp = sc.data_ptr<float>();
    float *dxp = gx.data_ptr<float>(), *dsp = gs.data_ptr<float>();
    parallel_tasks(n, c * pixels, [&](int64_t n0, int64_t n1) {
      for (int64_t i = n0; i < n1; ++i)
        channel_scale_backward(xp + i * c * pixels, gp + i * c * pixels, sp + i * c,
                               dxp + i * c * pixels, dsp + i * c, c, pixels, cl);
    });
    return {gx, gs};
  }
};

bool image_batch(const torch::Tensor& x) {
  return plain_cpu_float32(x) && x.dim() == 4 && x.numel() > 0 &&
         (x.is_contiguous() || x.is_contiguous(torch::MemoryFormat::ChannelsLast));
}

}  // namespace

bool channel_mean_applies(const torch::Tensor& x) { return image_batch(x); }

bool channel_scale_applies(const torch::Tensor& x, const torch::Tensor& s) {
  return image_batch(x) && plain_cpu_float32(s) && s.dim() == 4 && s.size(0) == x.size(0) &&
         s.size(1) == x.size(1) && s.size(2) == 1 && s.size(3) == 1;
}

torch::Tensor channel_mean(const torch::Tensor& x) {
  if (!channel_mean_applies(x) || !torch::GradMode::is_enabled() || !x.requires_grad())
    return x.mean({2, 3}, /*keepdim=*/true);
  return ChannelMean::apply(x);
}

torch::Tensor channel_scale(const torch::Tensor& x, const torch::Tensor& s) {
  if (!channel_scale_applies(x, s) || !torch::GradMode::is_enabled() ||
      !(x.requires_grad() || s.requires_grad()))
    return x * s;
  RecordedOp record("odyssey::channel_scale", [&] { return std::vector<c10::IValue>{x, s}; });
  auto y = ChannelScale::apply(x, s);
  record.set_output(y);
  return y;
}

}  // namespace odyssey
