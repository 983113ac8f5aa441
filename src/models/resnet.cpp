#include "models/resnet.h"

#include <torch/torch.h>

#include "common/error.h"
#include "models/registry.h"
#include "models/conv2d.h"

namespace odyssey {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

// BasicBlock (expansion 1): 3x3 (stride) - 3x3; Bottleneck (expansion 4): 1x1 - 3x3 (stride) -
// 1x1. downsample (.0 1x1 conv, .1 BatchNorm) where the shape changes.
struct ResBlockImpl : nn::Module {
  ResBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck) {
    const int64_t out = bottleneck ? planes * 4 : planes;
    if (bottleneck) {
      convs = {conv(in, planes, 1, 1), conv(planes, planes, 3, stride), conv(planes, out, 1, 1)};
      bns = {BatchNorm2d(planes), BatchNorm2d(planes), BatchNorm2d(out)};
    } else {
      convs = {conv(in, planes, 3, stride), conv(planes, planes, 3, 1)};
      bns = {BatchNorm2d(planes), BatchNorm2d(planes)};
    }
    for (size_t i = 0; i < convs.size(); ++i) {
      register_module("conv" + std::to_string(i + 1), convs[i]);
      register_module("bn" + std::to_string(i + 1), bns[i]);
    }
    if (stride != 1 || in != out)
      downsample = register_module("downsample", nn::Sequential(conv(in, out, 1, stride), BatchNorm2d(out)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = x;
    for (size_t i = 0; i < convs.size(); ++i) {
      y = bns[i]->forward(conv2d_forward(convs[i], y));
      if (i + 1 < convs.size()) y = torch::relu(y);
    }
    return torch::relu(y + (downsample ? downsample->forward(x) : x));
  }
  std::vector<nn::Conv2d> convs;
  std::vector<BatchNorm2d> bns;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(ResBlock);

}  // namespace

ResNet::ResNet(const ResNetSpec& spec, const ModelOptions& o) : dropout_(option_or(o.dropout, 0.0)) {
  ODY_CHECK(o.stochastic_depth <= 0,
            "model.stochastic_depth: torchvision's ResNet has no stochastic depth", "leave it at -1");
  conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels, 64, 7).stride(2).padding(3).bias(false)));
  bn1_ = register_module("bn1", BatchNorm2d(64));
  int64_t in = 64;
  const int64_t expansion = spec.bottleneck ? 4 : 1;
  for (size_t s = 0; s < spec.blocks.size(); ++s) {
    const int64_t planes = 64 << s;
    nn::Sequential stage;
    for (int64_t i = 0; i < spec.blocks[s]; ++i) {
      stage->push_back(ResBlock(in, planes, i == 0 && s > 0 ? 2 : 1, spec.bottleneck));
      in = planes * expansion;
    }
    layers_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  fc_ = register_module("fc", nn::Linear(in, o.num_classes));
  // torchvision: kaiming_normal_(fan_out, relu) convolutions, BatchNorm 1/0, the Linear's default.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = m->as<BatchNorm2d>()) {
      bn->weight.fill_(1);
      bn->bias.zero_();
    }
  }
}

torch::Tensor ResNet::features(torch::Tensor x) {
  x = torch::relu(bn1_->forward(conv1_->forward(x)));
  x = torch::max_pool2d(x, 3, 2, 1);
  for (auto& l : layers_) x = l->forward(x);
  return x.mean({2, 3});
}

torch::Tensor ResNet::forward(torch::Tensor x) {
  return fc_->forward(torch::dropout(features(x), dropout_, is_training()));
}

void register_resnets(ModelRegistry& r) {
  struct Variant {
    const char* name;
    const char* doc;
    ResNetSpec spec;
  };
  const Variant variants[] = {
      {"resnet18", "ResNet-18 (torchvision resnet18)", {false, {2, 2, 2, 2}}},
      {"resnet34", "ResNet-34 (torchvision resnet34)", {false, {3, 4, 6, 3}}},
      {"resnet50", "ResNet-50 v1.5 (torchvision resnet50)", {true, {3, 4, 6, 3}}},
  };
  for (const auto& v : variants) {
    ResNetSpec spec = v.spec;
    r.add({v.name, v.doc, 224, [spec](const ModelOptions& o) { return std::make_shared<ResNet>(spec, o); }});
  }
}

}  // namespace odyssey
