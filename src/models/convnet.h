// ConvNet: a Conv-BN-ReLU-MaxPool feature extractor and a linear head (the seed design's
// classifier shape), plus a tiny BatchNorm-free debug net for exactness tests.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <vector>

#include "models/batch_norm.h"
#include "models/classifier.h"

namespace odyssey {

struct ConvNetSpec {
  std::vector<int64_t> widths;  // one Conv-BN-ReLU-MaxPool stage per entry
  bool batch_norm = true;
  bool global_pool = false;     // average-pool before the head (else flatten)
  double dropout = 0.0;         // before the head (default of ModelOptions::dropout)
};

// Parameter names: features.<i>.weight / .bias (conv, BN), classifier.weight / .bias.
class ConvNet : public Classifier {
 public:
  ConvNet(const ConvNetSpec& spec, const ModelOptions& options);
  torch::Tensor forward(torch::Tensor x) override;
  // The last stage's output, average-pooled (global_pool) or flattened: what the head reads.
  torch::Tensor features(torch::Tensor x) override;

 private:
  torch::nn::Sequential features_{nullptr};  // the stages' modules, for their names
  std::vector<torch::nn::Conv2d> convs_;      // the same modules, one per stage
  std::vector<BatchNorm2d> norms_;            // (empty without BatchNorm)
  torch::nn::Linear classifier_{nullptr};
  bool global_pool_;
  double dropout_;
};

}  // namespace odyssey
