// EfficientNet-B0..B7 in torchvision 0.14's exact layout (parameter names, shapes, BatchNorm
// settings, squeeze-excitation sizes, stochastic-depth schedule), plus a reduced variant for
// small images.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include "models/classifier.h"

namespace odyssey {

struct EfficientNetSpec {
  double width_mult = 1.0;
  double depth_mult = 1.0;
  double dropout = 0.2;           // default of ModelOptions::dropout
  double stochastic_depth = 0.2;  // default of ModelOptions::stochastic_depth
  double bn_eps = 1e-5;
  double bn_momentum = 0.1;
  int64_t stem_stride = 2;
};

// Parameter names: features.<i>..., classifier.1.weight/bias (torchvision's state_dict keys).
class EfficientNet : public Classifier {
 public:
  EfficientNet(const EfficientNetSpec& spec, const ModelOptions& options);
  torch::Tensor forward(torch::Tensor x) override;
  // Pooled features before the classifier (after the average pool): [B, C].
  torch::Tensor features(torch::Tensor x) override;

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Sequential classifier_{nullptr};
};

// torchvision's _make_divisible(v, 8).
int64_t make_divisible(double v, int64_t divisor = 8);

}  // namespace odyssey
