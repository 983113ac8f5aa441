// linear(x, W, b) = x W^T + b, as torch::linear, with its three products (forward, input and
// weight gradients) computed by oneDNN's sgemm where models/cpu_gemm.h chose it and the tensors
// are CPU float32 outside autocast; everything else (CUDA, bf16, autocast, no bias) is
// torch::linear. The ViT's linear layers keep torch::nn::Linear for their parameters, names and
// initialisation and call this in forward (the convolutional zoo's small heads stay LibTorch's).
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
inline torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return linear(x, layer->weight, layer->bias);
}

// Whether linear() computes these tensors with oneDNN's sgemm.
bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias);

}  // namespace odyssey
