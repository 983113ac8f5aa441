// linear(x, W, b) = x W^T + b, as torch::linear, with its three products (forward, input and
// weight gradients) computed by oneDNN's sgemm where models/cpu_gemm.h chose it and the tensors
// are CPU float32 outside autocast; everything else (CUDA, bf16, autocast) is torch::linear. The
// ViT's linear layers keep torch::nn::Linear for their parameters, names and initialisation and
// call this in forward (the convolutional zoo's small heads stay LibTorch's).
//
// conv1x1 is the same product over the channels of a channels-last image: [N, C, H, W] with
// channels-last strides is the row-major matrix [N*H*W, C], so a 1x1 convolution with stride 1 is
// linear() on it, with no copy in or out (EfficientNet's expand and project layers; oneDNN's own
// 1x1 convolution, which LibTorch calls, takes ~1.2x as long for its forward and two gradients at
// EfficientNet-B0's shapes). Counted as a convolution by models/flops.h.
#pragma once

#include <torch/torch.h>

namespace odyssey {

// bias may be undefined (no bias).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
inline torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return linear(x, layer->weight, layer->bias);
}

// Whether linear() computes these tensors with oneDNN's sgemm.
bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias);

// x [N, C, H, W], weight [K, C, 1, 1], bias [K] or undefined: torch::conv2d(x, weight, bias)
// (stride 1, no padding); through linear()'s product where conv1x1_applies, else torch::conv2d.
torch::Tensor conv1x1(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Whether conv1x1 computes these tensors with oneDNN's sgemm: linear()'s conditions, and x
// channels-last-contiguous.
bool conv1x1_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace odyssey
