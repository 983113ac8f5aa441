// conv3x3: a 3x3 convolution with stride 1 and zero padding 1 (ResNet's and the plain CNNs'
// workhorse), computed on CPU float32 channels-last images by Winograd's F(2x2, 3x3) algorithm
// (models/winograd_kernels.h): 16 multiplications per 2x2 output tile and channel pair instead of
// 36, as 16 matrix products through models/cpu_gemm.h's library. Forward, input and filter
// gradients; the result agrees with a direct convolution to float rounding (the transforms'
// coefficients are 0, +-1 and 1/2). Anything else (CUDA, NCHW images, half precision, autocast,
// another kernel size) is torch::conv2d.
//
// train.cpu_conv chooses: "auto" is Winograd where oneDNN's sgemm computes the matrix products
// (measured faster than LibTorch's direct oneDNN convolution on an AVX-512 CPU), else LibTorch.
// The backward pass is not itself differentiable (no double backward), as the trainer needs.
#pragma once

#include <torch/torch.h>

#include <string>

namespace odyssey {

enum class CpuConv { kLibTorch, kWinograd };

// train.cpu_conv: "auto", "winograd" or "libtorch"; an Error naming `key` for anything else.
// Process-wide, set once at start-up by the trainer (initially "auto").
void set_cpu_conv(const std::string& mode, const std::string& key);
CpuConv cpu_conv();  // "auto" resolved against the current models/cpu_gemm.h choice
// What a run's 3x3 convolutions get in this memory order (Winograd takes channels-last only).
CpuConv cpu_conv_for(bool channels_last);
std::string cpu_conv_name(CpuConv c);  // "Winograd F(2x2, 3x3)" or "LibTorch"

// x [N, C, H, W], weight [K, C, 3, 3]: torch::conv2d(x, weight, {}, 1, 1).
torch::Tensor conv3x3(const torch::Tensor& x, const torch::Tensor& weight);

// Whether conv3x3 computes these tensors with Winograd's algorithm.
bool winograd_conv_applies(const torch::Tensor& x, const torch::Tensor& weight);

}  // namespace odyssey
