// conv2d_forward: a torch::nn::Conv2d layer's forward through Odyssey's CPU convolutions where
// one computes it: models/winograd_conv.h's conv3x3 for 3x3 layers with stride 1, padding 1 and
// at least 16 input channels, models/linear.h's conv1x1 for 1x1 layers with stride 1 and no
// padding (each decides from the tensors whether it runs, else it is LibTorch's convolution); the
// layer's own forward otherwise.
// ResNet's blocks, the plain CNNs (models/convnet.h) and models/stack.h's Stack (EfficientNet's,
// the ViT stem's layers) call it.
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor conv2d_forward(torch::nn::Conv2dImpl& layer, const torch::Tensor& x);
inline torch::Tensor conv2d_forward(const torch::nn::Conv2d& layer, const torch::Tensor& x) {
  return conv2d_forward(*layer.ptr(), x);
}

}  // namespace odyssey
