// bn_relu_pool: max_pool2d(relu(bn(x)), 2), the BatchNorm-ReLU-MaxPool tail of each ConvNet
// stage, fused for CPU float32 channels-last images (models/bn_relu_pool_kernels.h): one pass over
// x after the batch statistics forward (LibTorch's three operators make about seven), two passes
// backward (about nine), and nothing kept but x (LibTorch keeps a full-size activation and an
// 8-byte index per pooled value; the backward finds each window's maximum again). Same values to
// float rounding (the statistics are summed in double), the same running statistics and batch
// count as the layer's own forward. Anything else (CUDA, NCHW, half precision, autocast, SyncBatchNorm's all-reduced
// statistics while training, empty windows) is the three LibTorch operators.
#pragma once

#include <torch/torch.h>

#include "models/batch_norm.h"

namespace odyssey {

// x [N, C, H, W], the output of a convolution; bn in training or evaluation mode.
torch::Tensor bn_relu_pool(const torch::Tensor& x, BatchNorm2dImpl& bn);

// Whether bn_relu_pool computes this with the fused kernels.
bool bn_relu_pool_fused(const torch::Tensor& x, const BatchNorm2dImpl& bn);

}  // namespace odyssey
