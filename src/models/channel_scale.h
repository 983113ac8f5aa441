// The squeeze-excitation block's two full-size operations (EfficientNet), as autograd nodes that
// make fewer passes over the activation than LibTorch's, for CPU float32 images outside autocast
// (NCHW or channels-last); anything else is the plain LibTorch expression.
//
// channel_mean(x) = x.mean({2, 3}, keepdim = true): backward hands on the gradient / (H W) as a
// broadcast view; LibTorch's MeanBackward writes it out at full size (a division pass over the
// activation), only for autograd to add it to the other gradient of x.
//
// channel_scale(x, s) = x * s with s [N, C, 1, 1]: backward computes dx = dy s and
// ds = sum over H, W of dy x in one pass over dy and x (models/channel_scale_kernels.h); LibTorch's
// MulBackward makes three (dy s, dy x, and the sum of that). The sums run per image in a fixed
// order: the same bits at any thread count.
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor channel_mean(const torch::Tensor& x);
torch::Tensor channel_scale(const torch::Tensor& x, const torch::Tensor& s);

// Whether they run Odyssey's nodes for these tensors.
bool channel_mean_applies(const torch::Tensor& x);
bool channel_scale_applies(const torch::Tensor& x, const torch::Tensor& s);

}  // namespace odyssey
