// DepthwiseConv2d: a depthwise convolution layer (one kxk filter per channel, no bias), a drop-in
// for torch::nn::Conv2d(C, C, k, groups = C, bias = false) with the same "weight" parameter, and
// depthwise_conv2d, the function behind it. On CPU float tensors (NCHW or channels-last) that
// need gradients, the filter gradient of 5x5 filters and of small planes comes from Odyssey's
// kernels (models/depthwise_kernels.h; LibTorch's is 5-80x slower there), the rest from LibTorch;
// anything else (CUDA, half precision, autocast, no gradients) is plain at::conv2d.
#pragma once

#include <torch/torch.h>

#include <ostream>

namespace odyssey {

// x [N, C, H, W], weight [C, 1, kh, kw]; zero padding; no dilation.
torch::Tensor depthwise_conv2d(const torch::Tensor& x, const torch::Tensor& weight,
                               torch::IntArrayRef stride, torch::IntArrayRef padding);

// Whether depthwise_conv2d runs Odyssey's kernels for these tensors (else at::conv2d).
bool depthwise_kernels_apply(const torch::Tensor& x, const torch::Tensor& weight);

class DepthwiseConv2dImpl : public torch::nn::Cloneable<DepthwiseConv2dImpl> {
 public:
  DepthwiseConv2dImpl(int64_t channels, int64_t kernel, int64_t stride, int64_t padding);

  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& input);

  int64_t channels, kernel, stride, padding;
  torch::Tensor weight;
};
TORCH_MODULE(DepthwiseConv2d);

}  // namespace odyssey
