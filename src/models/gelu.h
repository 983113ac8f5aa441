// gelu(x): the exact (erf) GELU as torch::gelu, computed by models/gelu_kernels.h in one autograd
// node for CPU float32 tensors outside autocast (4x faster than LibTorch 1.13's CPU kernel);
// everything else (CUDA, bf16, autocast) is torch::gelu.
#pragma once

#include <torch/torch.h>

namespace odyssey {

torch::Tensor gelu(const torch::Tensor& x);

// Whether gelu() computes this tensor with models/gelu_kernels.h.
bool own_gelu_applies(const torch::Tensor& x);

}  // namespace odyssey
