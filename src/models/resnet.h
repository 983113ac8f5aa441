// ResNet-18/34/50 in torchvision 0.14's exact layout (He et al. 2016; ResNet v1.5: the stride in
// the bottleneck's 3x3 convolution), torchvision's initialisation, for the peer benchmarks and
// as a baseline CNN.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "models/batch_norm.h"
#include "models/classifier.h"

namespace odyssey {

struct ResNetSpec {
  bool bottleneck = false;           // BasicBlock (18, 34) or Bottleneck (50)
  std::vector<int64_t> blocks;       // blocks per stage (layer1..layer4)
};

// Parameter names: conv1, bn1, layer<1-4>.<i>.{conv1,bn1,conv2,bn2[,conv3,bn3][,downsample.0/.1]},
// fc (torchvision's state_dict keys).
class ResNet : public Classifier {
 public:
  ResNet(const ResNetSpec& spec, const ModelOptions& options);
  torch::Tensor forward(torch::Tensor x) override;
  torch::Tensor features(torch::Tensor x) override;  // after the global average pool: [B, C]
  std::string head_prefix() const override { return "fc."; }

 private:
  torch::nn::Conv2d conv1_{nullptr};
  BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;
  torch::nn::Linear fc_{nullptr};
  double dropout_;  // before fc (torchvision's ResNet has none: default 0)
};

}  // namespace odyssey
