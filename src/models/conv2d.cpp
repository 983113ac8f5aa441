#include "models/conv2d.h"

#include <variant>

#include "models/linear.h"
#include "models/winograd_conv.h"

namespace odyssey {

namespace {
constexpr int64_t kMinWinogradChannels = 16;
}  // namespace

torch::Tensor conv2d_forward(torch::nn::Conv2dImpl& layer, const torch::Tensor& x) {
  const auto& o = layer.options;
  // The options hold std::variant from LibTorch 2.x, c10::variant in 1.13: there argument-dependent
  // lookup finds c10::get_if.
  using std::get_if;
  const auto* padding = get_if<torch::ExpandingArray<2>>(&o.padding());
  const auto kernel = *o.kernel_size(), stride = *o.stride(), dilation = *o.dilation();
  const bool plain = stride[0] == 1 && stride[1] == 1 && padding && dilation[0] == 1 &&
                     dilation[1] == 1 && o.groups() == 1 && !o.transposed() &&
                     get_if<torch::enumtype::kZeros>(&o.padding_mode());
  // Winograd's transforms cost more than its products save on thin inputs: efficientnet_s's
  // 3-channel stem trained ~10 % slower with it; one layer's forward and backward, batch 32, one
  // core: 8 input channels 0.88x LibTorch's, 16 0.93-1.16x, 24-32 1.04-1.39x, 64+ 1.1-1.8x.
  if (plain && kernel[0] == 3 && kernel[1] == 3 && (**padding)[0] == 1 && (**padding)[1] == 1 &&
      !o.bias() && o.in_channels() >= kMinWinogradChannels)
    return conv3x3(x, layer.weight);
  if (plain && kernel[0] == 1 && kernel[1] == 1 && (**padding)[0] == 0 && (**padding)[1] == 0)
    return conv1x1(x, layer.weight, layer.bias);  // bias undefined without one
  return layer.forward(x);
}

}  // namespace odyssey
