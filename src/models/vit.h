// Vision Transformer in torchvision 0.14's exact layout (class token, learned position
// embeddings, pre-LN encoder blocks with packed q/k/v projections, LayerNorm eps 1e-6, exact GELU),
// the DeiT-Ti/S sizes, and small-patch variants for 28-64 px images; optionally torchvision's
// convolutional stem (Xiao et al. 2021, "Early convolutions help transformers see better") in
// place of the patchify convolution.
#pragma once

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "models/classifier.h"

namespace odyssey {

struct VitSpec {
  int64_t patch = 16;
  int64_t hidden = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp = 3072;
  double dropout = 0.0;           // torchvision's ViT dropout (default of ModelOptions::dropout)
  double stochastic_depth = 0.0;  // DeiT's drop path (default of ModelOptions::stochastic_depth)
  // Convolutional stem (torchvision's conv_stem_configs): Conv-BN-ReLU layers, then a 1x1
  // convolution to `hidden`; the strides multiply to `patch`. Empty: one patch x patch conv.
  struct StemLayer {
    int64_t channels, kernel, stride;
  };
  std::vector<StemLayer> stem;
};

class VisionTransformer : public Classifier {
 public:
  VisionTransformer(const VitSpec& spec, const ModelOptions& options);
  torch::Tensor forward(torch::Tensor x) override;
  torch::Tensor features(torch::Tensor x) override;  // the class token after the final LayerNorm
  std::string head_prefix() const override { return "heads."; }

 private:
  VitSpec spec_;
  torch::nn::Conv2d patchify_{nullptr};  // conv_proj: one patch x patch convolution, or
  torch::nn::Sequential stem_{nullptr};  // conv_proj: the convolutional stem
  torch::Tensor class_token_;
  std::shared_ptr<torch::nn::Module> encoder_;
  torch::nn::Sequential heads_{nullptr};
};

}  // namespace odyssey
