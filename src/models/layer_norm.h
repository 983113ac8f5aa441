// layer_norm(x, ln): nn::LayerNorm's normalisation over x's last dimension, computed by
// models/layer_norm_kernels.h in one autograd node for CPU float32 tensors outside autocast
// (forward and backward together ~4x faster than LibTorch 1.13's CPU kernels on a ViT-Ti's
// [3200, 192] activations); everything else (CUDA, bf16, autocast, a normalised shape of more
// than one dimension, no affine parameters) is the module's own forward. The weight and bias
// gradients are summed in fixed blocks of rows and the blocks added in order: the same bits
// whatever the thread count.
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor layer_norm(const torch::Tensor& x, const torch::nn::LayerNorm& ln);

// Whether layer_norm() computes x with models/layer_norm_kernels.h.
bool own_layer_norm_applies(const torch::Tensor& x, const torch::nn::LayerNorm& ln);

}  // namespace odyssey
