#include "models/convnet.h"

#include <torch/torch.h>

#include "common/error.h"
#include "models/batch_norm.h"
#include "models/batch_norm_fused.h"
#include "models/conv2d.h"
#include "models/registry.h"

namespace odyssey {

ConvNet::ConvNet(const ConvNetSpec& spec, const ModelOptions& o)
    : global_pool_(spec.global_pool), dropout_(option_or(o.dropout, spec.dropout)) {
  namespace nn = torch::nn;
  ODY_CHECK(o.stochastic_depth <= 0,
            ODY_MSG("model.stochastic_depth = " << o.stochastic_depth
                                                << ": this plain CNN has no residual blocks to drop"),
            "stochastic depth applies to the EfficientNet and ViT models; leave it at -1 or 0");
  features_ = nn::Sequential();
  int64_t c = o.in_channels, side = o.image_size;
  for (int64_t w : spec.widths) {
    convs_.push_back(nn::Conv2d(nn::Conv2dOptions(c, w, 3).padding(1).bias(!spec.batch_norm)));
    features_->push_back(convs_.back());
    if (spec.batch_norm) {
      norms_.push_back(BatchNorm2d(w));
      features_->push_back(norms_.back());
    }
    features_->push_back(nn::ReLU(nn::ReLUOptions(/*inplace=*/true)));
    features_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    c = w;
    side /= 2;
  }
  ODY_CHECK(global_pool_ || side >= 1,
            ODY_MSG("image size " << o.image_size << " is too small for "
                                  << spec.widths.size() << " pooling stages"),
            "");
  int64_t features = global_pool_ ? c : c * side * side;
  classifier_ = nn::Linear(features, o.num_classes);
  register_module("features", features_);
  register_module("classifier", classifier_);
}

torch::Tensor ConvNet::features(torch::Tensor x) {
  for (size_t i = 0; i < convs_.size(); ++i) {  // features_'s modules in order
    x = conv2d_forward(convs_[i], x);
    // BatchNorm-ReLU-MaxPool: fused for channels-last CPU floats
    x = norms_.empty() ? torch::max_pool2d(torch::relu_(x), 2) : bn_relu_pool(x, *norms_[i]);
  }
  return global_pool_ ? x.mean({2, 3}) : x.flatten(1);
}

torch::Tensor ConvNet::forward(torch::Tensor x) {
  x = features(x);
  if (dropout_ > 0) x = torch::dropout(x, dropout_, is_training());
  return classifier_->forward(x);
}

void register_convnets(ModelRegistry& r) {
  auto add = [&](std::string name, std::string doc, int64_t size, ConvNetSpec spec) {
    r.add({std::move(name), std::move(doc), size,
           [spec](const ModelOptions& o) { return std::make_shared<ConvNet>(spec, o); }});
  };
  add("fmnist_cnn", "quickstart CNN for 28x28 grayscale: 3 x Conv-BN-ReLU-MaxPool, linear head",
      28, {{32, 64, 128}, true, false, 0.0});
  add("convnet", "4 x Conv-BN-ReLU-MaxPool (64-512 wide), global pool, linear head", 64,
      {{64, 128, 256, 512}, true, true, 0.0});
  add("tiny_cnn", "debug net without BatchNorm: 1 x Conv-ReLU-MaxPool (8 wide), linear head", 28,
      {{8}, false, false, 0.0});
}

}  // namespace odyssey
