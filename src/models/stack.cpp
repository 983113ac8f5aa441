#include "models/stack.h"

#include "models/batch_norm.h"
#include "models/batch_norm_fused.h"
#include "models/conv2d.h"

namespace odyssey {

torch::Tensor StackImpl::forward(torch::Tensor x) {
  for (auto it = begin(); it != end(); ++it) {
    auto* bn = it->ptr()->as<BatchNorm2dImpl>();
    const auto next = std::next(it);
    if (bn != nullptr && next != end() && next->ptr()->as<torch::nn::SiLUImpl>() != nullptr) {
      x = bn_silu(x, *bn);  // BatchNorm-SiLU as one operator where it can
      it = next;
    } else if (auto* conv = it->ptr()->as<torch::nn::Conv2dImpl>()) {
      x = conv2d_forward(*conv, x);  // Odyssey's CPU convolutions where they apply
    } else {
      x = it->forward(x);
    }
  }
  return x;
}

}  // namespace odyssey
