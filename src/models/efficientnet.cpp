#include "models/efficientnet.h"

#include <torch/torch.h>

#include <cmath>

#include "models/batch_norm.h"
#include "models/channel_scale.h"
#include "models/conv2d.h"
#include "models/depthwise_conv.h"
#include "models/registry.h"
#include "models/stack.h"

namespace odyssey {

namespace nn = torch::nn;

int64_t make_divisible(double v, int64_t divisor) {
  int64_t new_v = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (new_v < 0.9 * v) new_v += divisor;
  return new_v;
}

namespace {

struct BnOptions {
  double eps, momentum;
};

// Conv2dNormActivation: .0 conv (no bias), .1 BatchNorm, .2 SiLU (when act).
Stack conv_bn(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, bool act,
              BnOptions bn) {
  Stack s;
  if (groups == in && in == out)  // depthwise: Odyssey's kernels (LibTorch's CPU backward is slow)
    s->push_back(DepthwiseConv2d(in, k, stride, (k - 1) / 2));
  else
    s->push_back(nn::Conv2d(
        nn::Conv2dOptions(in, out, k).stride(stride).padding((k - 1) / 2).groups(groups).bias(false)));
  s->push_back(BatchNorm2d(nn::BatchNormOptions(out).eps(bn.eps).momentum(bn.momentum)));
  if (act) s->push_back(nn::SiLU());
  return s;
}

// Squeeze-excitation: avgpool, fc1 (1x1 conv), SiLU, fc2 (1x1 conv), sigmoid, scale.
struct SqueezeExcitationImpl : nn::Module {
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze)
      : fc1(register_module("fc1", nn::Conv2d(nn::Conv2dOptions(channels, squeeze, 1)))),
        fc2(register_module("fc2", nn::Conv2d(nn::Conv2dOptions(squeeze, channels, 1)))) {}
  torch::Tensor forward(torch::Tensor x) {
    auto s = channel_mean(x);  // x.mean({2, 3}, keepdim), models/channel_scale.h
    s = torch::sigmoid(conv2d_forward(fc2, torch::silu(conv2d_forward(fc1, s))));  // models/conv2d.h
    return channel_scale(x, s);  // x * s
  }
  nn::Conv2d fc1, fc2;
};
TORCH_MODULE(SqueezeExcitation);

// MBConv: [expand 1x1] -> depthwise kxk -> SE -> project 1x1, with stochastic depth on the
// residual branch (per sample, "row" mode).
struct MBConvImpl : nn::Module {
  MBConvImpl(int64_t in, int64_t out, int64_t expand_ratio, int64_t k, int64_t stride,
             double sd_prob, BnOptions bn)
      : residual(stride == 1 && in == out), sd_prob(sd_prob) {
    const int64_t expanded = make_divisible(static_cast<double>(in) * expand_ratio);
    block = Stack();
    if (expanded != in) block->push_back(conv_bn(in, expanded, 1, 1, 1, true, bn));
    block->push_back(conv_bn(expanded, expanded, k, stride, expanded, true, bn));
    block->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, in / 4)));
    block->push_back(conv_bn(expanded, out, 1, 1, 1, false, bn));
    register_module("block", block);
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = block->forward(x);
    if (!residual) return y;
    if (is_training() && sd_prob > 0) {
      const double survival = 1.0 - sd_prob;
      auto noise = torch::empty({y.size(0), 1, 1, 1}, y.options()).bernoulli_(survival);
      y = y * noise.div_(survival);
    }
    return y + x;
  }
  Stack block{nullptr};
  bool residual;
  double sd_prob;
};
TORCH_MODULE(MBConv);

struct StageConfig {
  int64_t expand, kernel, stride, in, out, layers;
};
// torchvision's EfficientNet-B0 table before width/depth scaling.
const StageConfig kStages[] = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                               {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                               {6, 3, 1, 192, 320, 1}};

}  // namespace

EfficientNet::EfficientNet(const EfficientNetSpec& spec, const ModelOptions& o) {
  const BnOptions bn{spec.bn_eps, spec.bn_momentum};
  auto width = [&](int64_t c) { return make_divisible(c * spec.width_mult); };
  auto depth = [&](int64_t n) { return static_cast<int64_t>(std::ceil(n * spec.depth_mult)); };
  features_ = nn::Sequential();
  features_->push_back(conv_bn(o.in_channels, width(kStages[0].in), 3, spec.stem_stride, 1, true, bn));
  // torchvision: block i of N drops its residual branch with probability p * i / N.
  const double stochastic_depth = option_or(o.stochastic_depth, spec.stochastic_depth);
  int64_t total_blocks = 0, block_id = 0;
  for (const auto& s : kStages) total_blocks += depth(s.layers);
  for (const auto& s : kStages) {
    Stack stage;
    for (int64_t i = 0; i < depth(s.layers); ++i) {
      const int64_t in = i == 0 ? width(s.in) : width(s.out);
      const double sd = stochastic_depth * static_cast<double>(block_id++) / total_blocks;
      stage->push_back(MBConv(in, width(s.out), s.expand, s.kernel, i == 0 ? s.stride : 1, sd, bn));
    }
    features_->push_back(stage);
  }
  const int64_t last_in = width(kStages[6].out), last_out = 4 * last_in;
  features_->push_back(conv_bn(last_in, last_out, 1, 1, 1, true, bn));
  classifier_ = nn::Sequential(nn::Dropout(nn::DropoutOptions(option_or(o.dropout, spec.dropout)).inplace(true)),
                               nn::Linear(last_out, o.num_classes));
  register_module("features", features_);
  register_module("classifier", classifier_);

  // torchvision's initialisation.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* conv = m->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* dw = m->as<DepthwiseConv2d>()) {
      nn::init::kaiming_normal_(dw->weight, 0.0, torch::kFanOut);
    } else if (auto* bnm = m->as<BatchNorm2d>()) {
      bnm->weight.fill_(1);
      bnm->bias.zero_();
    } else if (auto* lin = m->as<nn::Linear>()) {
      const double r = 1.0 / std::sqrt(static_cast<double>(lin->weight.size(0)));
      lin->weight.uniform_(-r, r);
      lin->bias.zero_();
    }
  }
}

torch::Tensor EfficientNet::features(torch::Tensor x) {
  return features_->forward(x).mean({2, 3});
}

torch::Tensor EfficientNet::forward(torch::Tensor x) { return classifier_->forward(features(x)); }

void register_efficientnets(ModelRegistry& r) {
  struct Variant {
    const char* name;
    double width, depth, dropout;
    int64_t resolution;
  };
  const Variant variants[] = {{"efficientnet_b0", 1.0, 1.0, 0.2, 224}, {"efficientnet_b1", 1.0, 1.1, 0.2, 240},
                              {"efficientnet_b2", 1.1, 1.2, 0.3, 288}, {"efficientnet_b3", 1.2, 1.4, 0.3, 300},
                              {"efficientnet_b4", 1.4, 1.8, 0.4, 380}, {"efficientnet_b5", 1.6, 2.2, 0.4, 456},
                              {"efficientnet_b6", 1.8, 2.6, 0.5, 528}, {"efficientnet_b7", 2.0, 3.1, 0.5, 600}};
  for (const auto& v : variants) {
    EfficientNetSpec spec{v.width, v.depth, v.dropout, 0.2, 1e-5, 0.1, 2};
    if (v.width >= 1.6) spec.bn_eps = 1e-3, spec.bn_momentum = 0.01;  // b5-b7, as torchvision
    r.add({v.name, "EfficientNet (torchvision layout)", v.resolution,
           [spec](const ModelOptions& o) { return std::make_shared<EfficientNet>(spec, o); }});
  }
  // Small images (28-64 px): half width, half depth, stem stride 1.
  EfficientNetSpec small{0.5, 0.5, 0.1, 0.1, 1e-5, 0.1, 1};
  r.add({"efficientnet_s", "EfficientNet at half width and depth, stem stride 1, for 28-64 px", 32,
         [small](const ModelOptions& o) { return std::make_shared<EfficientNet>(small, o); }});
}

}  // namespace odyssey
