#include "models/depthwise_conv.h"

#include <ATen/Parallel.h>

#include <array>
#include <tuple>

#include "models/custom_node.h"
#include "models/depthwise_kernels.h"
#include "train/precision.h"

namespace odyssey {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

DepthwiseGeometry geometry(const torch::Tensor& x, const torch::Tensor& w, torch::IntArrayRef out,
                           torch::IntArrayRef stride, torch::IntArrayRef padding) {
  return {x.size(2), x.size(3), out[2], out[3], w.size(2), w.size(3),
          stride[0], stride[1], padding[0], padding[1]};
}

// One task per channel (all its images at once): channels are independent.
template <class F>
void for_each_channel(int64_t channels, int64_t work_per_channel, F f) {
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work_per_channel));
  at::parallel_for(0, channels, grain, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) f(c);
  });
}

// Which filter gradient to use, measured on EfficientNet-B0's layers at 64 px, batch 32, one
// thread: LibTorch's takes 2-11 ms for every 5x5 filter and for 3x3 filters on 2x2 planes (NCHW
// and channels-last alike), Odyssey's 0.1-1.5 ms; for 3x3 filters on larger planes LibTorch's is
// the faster (0.1-1.5 ms against 0.1-3.5 ms).
bool odyssey_filter_gradient(int64_t taps, int64_t plane) { return taps > 9 || plane <= 16; }

// NCHW planes up to this many pixels go through channels-last copies (2-5x faster than the
// per-channel kernel at 8x8 and below, 1.5-2.5x slower at 16x16 and above).
constexpr int64_t kChannelsLastMaxPlane = 64;

// grad_filter from grad_out and input laid out [n, h, w, c] in memory (vector loops across
// channels).
void filter_gradient_nhwc(const float* gp, const float* xp, float* gw, int64_t n, int64_t c,
                          const DepthwiseGeometry& g) {
  constexpr int64_t kBlock = 64;  // channels per task
  at::parallel_for(0, (c + kBlock - 1) / kBlock, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk)
      depthwise_grad_filter_nhwc(gp, xp, gw, n, c, blk * kBlock, std::min(c, (blk + 1) * kBlock), g);
  });
}

// Odyssey's filter gradient (where odyssey_filter_gradient says); go and x in the same memory
// order (NCHW or channels-last), w contiguous.
torch::Tensor filter_gradient(const torch::Tensor& go, const torch::Tensor& x,
                              const torch::Tensor& w, torch::IntArrayRef stride,
                              torch::IntArrayRef padding) {
  const auto g = geometry(x, w, go.sizes(), stride, padding);
  const int64_t c = x.size(1), taps = g.kernel_h * g.kernel_w, n = x.size(0);
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  auto gw = torch::empty(w.sizes(), w.options());  // [C, 1, kh, kw] contiguous
  float* gwp = gw.data_ptr<float>();
  if (is_channels_last(x)) {  // the tensors' own memory is NHWC
    filter_gradient_nhwc(go.data_ptr<float>(), x.data_ptr<float>(), gwp, n, c, g);
  } else if (in_plane <= kChannelsLastMaxPlane) {
    const auto go_cl = go.permute({0, 2, 3, 1}).contiguous();
    const auto x_cl = x.permute({0, 2, 3, 1}).contiguous();
    filter_gradient_nhwc(go_cl.data_ptr<float>(), x_cl.data_ptr<float>(), gwp, n, c, g);
  } else {
    const ChannelPlanes planes{n, c * in_plane, c * out_plane};
    const float *gp = go.data_ptr<float>(), *xp = x.data_ptr<float>();
    for_each_channel(c, n * out_plane * taps, [&](int64_t ch) {
      depthwise_grad_filter_channel(gp + ch * out_plane, xp + ch * in_plane, gwp + ch * taps, planes, g);
    });
  }
  return gw;
}

// Forward and input gradient: LibTorch's (oneDNN's) kernels, fast for every depthwise shape
// measured; the filter gradient: see odyssey_filter_gradient.
class DepthwiseConvFunction : public torch::autograd::Function<DepthwiseConvFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& w, std::vector<int64_t> stride,
                               std::vector<int64_t> padding) {
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    return torch::conv2d(x, w, {}, stride, padding, /*dilation=*/1, /*groups=*/x.size(1));
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];  // NCHW- or channels-last-contiguous (depthwise_kernels_apply)
    const auto w = saved[1].contiguous();
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto go = grads[0].contiguous(is_channels_last(x) ? torch::MemoryFormat::ChannelsLast
                                                            : torch::MemoryFormat::Contiguous);
    const bool ours = ctx->needs_input_grad(1) &&
                      odyssey_filter_gradient(w.size(2) * w.size(3), x.size(2) * x.size(3));
    torch::Tensor gx, gw;
    // One LibTorch call for what LibTorch computes: the input gradient, and the filter gradient
    // where its kernel is the faster one.
    const std::array<bool, 3> libtorch{ctx->needs_input_grad(0), ctx->needs_input_grad(1) && !ours,
                                       false};
    if (libtorch[0] || libtorch[1])
      std::tie(gx, gw, std::ignore) = at::convolution_backward(
          go, x, w, c10::nullopt, stride, padding, /*dilation=*/{1, 1}, /*transposed=*/false,
          /*output_padding=*/{0, 0}, x.size(1), libtorch);
    if (ours) {
      first_derivative_only("odyssey::depthwise_conv2d's filter gradient",
                            "train without double backward, or use CUDA (LibTorch's operators)");
      gw = filter_gradient(go, x, w, stride, padding);
    }
    return {gx, gw, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool depthwise_kernels_apply(const torch::Tensor& x, const torch::Tensor& weight) {
  return plain_cpu_float32(x) && plain_cpu_float32(weight) && x.dim() == 4 &&
         (x.is_contiguous() || x.is_contiguous(torch::MemoryFormat::ChannelsLast)) &&
         weight.dim() == 4 && weight.size(0) == x.size(1) && weight.size(1) == 1;
}

torch::Tensor depthwise_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                               torch::IntArrayRef stride, torch::IntArrayRef padding) {
  // Without gradients (evaluation, inference, MAC counting) LibTorch's forward is as fast.
  const bool grad = torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  if (!grad || !depthwise_kernels_apply(x, weight))
    return torch::conv2d(x, weight, {}, stride, padding, /*dilation=*/1, /*groups=*/x.size(1));
  return DepthwiseConvFunction::apply(x, weight, stride.vec(), padding.vec());
}

DepthwiseConv2dImpl::DepthwiseConv2dImpl(int64_t channels, int64_t kernel, int64_t stride,
                                         int64_t padding)
    : channels(channels), kernel(kernel), stride(stride), padding(padding) {
  reset();
}

void DepthwiseConv2dImpl::reset() {
  // nn::Conv2d's default initialisation (kaiming_uniform_ with a = sqrt(5)); models re-initialise.
  weight = register_parameter("weight", torch::empty({channels, 1, kernel, kernel}));
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
}

void DepthwiseConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "DepthwiseConv2d(" << channels << ", kernel_size=" << kernel << ", stride=" << stride
         << ", padding=" << padding << ")";
}

torch::Tensor DepthwiseConv2dImpl::forward(const torch::Tensor& input) {
  return depthwise_conv2d(input, weight, {stride, stride}, {padding, padding});
}

}  // namespace odyssey
