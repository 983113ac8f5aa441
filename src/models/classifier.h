// Classifier: the module type every registry model implements (images in, logits out), and the
// options every registry model is built from.
#pragma once

#include <torch/nn/module.h>

#include <string>

namespace odyssey {

struct ModelOptions {
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t image_size = 28;        // square input side the model is built for
  double dropout = -1;            // before the classifier head (negative: the architecture's default)
  double stochastic_depth = -1;   // drop-path rate, linear in the block index: block i of N drops
                                  // with p * i / N in EfficientNet (torchvision), p * i / (N - 1)
                                  // in ViT (DeiT) (negative: the architecture's default)
};

class Classifier : public torch::nn::Module {
 public:
  // x: float [B, C, H, W] -> logits [B, num_classes].
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // x -> the pooled features the classifier head reads: [B, D].
  virtual torch::Tensor features(torch::Tensor x) = 0;
  // Prefix of the classifier head's state_dict keys (replaced by model.reset_head).
  virtual std::string head_prefix() const { return "classifier."; }
};

// While one is alive on this thread, models compute all their reference implementation
// (torchvision) computes, outputs that reach neither the logits nor the features included: a
// ViT's last block then runs for every token, not for the class token alone. The MAC count
// (models/flops.h) runs under one, so it counts the architecture, as the literature's MFU does
// (and the PyTorch peers' figures); the tests compare the two ways.
class ReferenceForward {
 public:
  ReferenceForward() : saved_(active_) { active_ = true; }
  ~ReferenceForward() { active_ = saved_; }
  ReferenceForward(const ReferenceForward&) = delete;
  ReferenceForward& operator=(const ReferenceForward&) = delete;
  static bool active() { return active_; }

 private:
  static inline thread_local bool active_ = false;
  bool saved_;
};

// The option when set (not negative), else the architecture's default.
inline double option_or(double option, double architecture_default) {
  return option >= 0 ? option : architecture_default;
}

}  // namespace odyssey
