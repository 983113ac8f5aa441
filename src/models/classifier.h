// Classifier: the module type every registry model implements (images in, logits out).
#pragma once

#include <torch/nn/module.h>

#include <string>

namespace odyssey {

struct ModelOptions {
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t image_size = 28;  // square input side the model is built for
};

class Classifier : public torch::nn::Module {
 public:
  // x: float [B, C, H, W] -> logits [B, num_classes].
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // Prefix of the classifier head's state_dict keys (replaced by model.reset_head).
  virtual std::string head_prefix() const { return "classifier."; }
};

}  // namespace odyssey
