// BatchNorm fused with what follows it, for CPU float32 channels-last images
// (models/batch_norm_kernels.h). Same values to float rounding (the statistics are summed in
// double), the same running statistics and batch count as the layer's own forward. Anything else
// (CUDA, NCHW, half precision, autocast, SyncBatchNorm's all-reduced statistics while training)
// is LibTorch's operators. Neither backward is differentiable again (create_graph is an error).
//
// bn_relu_pool: max_pool2d(relu(bn(x)), 2), the BatchNorm-ReLU-MaxPool tail of each ConvNet
// stage: one pass over x after the batch statistics forward (LibTorch's three operators make
// about seven), two passes backward (about nine), and nothing kept but x (LibTorch keeps a
// full-size activation and an 8-byte index per pooled value; the backward finds each window's
// maximum again).
//
// bn_silu: silu(bn(x)), EfficientNet's BatchNorm-SiLU: one pass after the statistics forward
// (LibTorch: about five), two backward (about seven; SiLU's derivative is recomputed from x, so
// only x is kept, not the BatchNorm output); exp by a vectorised polynomial.
#pragma once

#include <torch/torch.h>

#include "models/batch_norm.h"

namespace odyssey {

// x [N, C, H, W], the output of a convolution; bn in training or evaluation mode.
torch::Tensor bn_relu_pool(const torch::Tensor& x, BatchNorm2dImpl& bn);

// Whether bn_relu_pool computes this with the fused kernels.
bool bn_relu_pool_fused(const torch::Tensor& x, const BatchNorm2dImpl& bn);

torch::Tensor bn_silu(const torch::Tensor& x, BatchNorm2dImpl& bn);
bool bn_silu_fused(const torch::Tensor& x, const BatchNorm2dImpl& bn);

}  // namespace odyssey
