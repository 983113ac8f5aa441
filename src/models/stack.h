// Stack: an nn::Sequential with a concrete forward(Tensor), so Sequentials can nest (torchvision
// nests them, and its state_dict keys such as features.1.0.block.0.0.weight follow the nesting).
// A BatchNorm2d followed by a SiLU runs as models/batch_norm_fused.h's bn_silu; a Conv2d through
// models/conv2d.h's conv2d_forward.
#pragma once

#include <torch/nn/modules/container/sequential.h>

namespace odyssey {

class StackImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Stack);

}  // namespace odyssey
