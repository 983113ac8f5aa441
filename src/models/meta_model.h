// MetaTensorsGuard and create_meta_model: a registry model with every parameter's shape but no
// memory and no initialisation (the meta device), so that counting parameters and forward MACs
// of even vit_h14 costs milliseconds instead of touching 2.5 GB.
#pragma once

#include <memory>
#include <string>

#include "models/classifier.h"

namespace odyssey {

// While alive, tensors created on this thread are meta tensors (shapes without storage; random
// initialisers do nothing). Only for building modules: anything reading tensor values fails.
class MetaTensorsGuard {
 public:
  MetaTensorsGuard();
  ~MetaTensorsGuard();
  MetaTensorsGuard(const MetaTensorsGuard&) = delete;
  MetaTensorsGuard& operator=(const MetaTensorsGuard&) = delete;

 private:
  uint64_t saved_included_, saved_excluded_;
};

// The registry model `name` built on the meta device: its parameters, buffers and forward
// shapes are those of the real model. 0-dim buffers made by torch::tensor (BatchNorm's
// num_batches_tracked) bypass the dispatcher and stay 8-byte CPU tensors; a forward in eval mode
// never reads them. LibTorch 1.13 lacks meta kernels for a few operators these models use
// (convolution, batch norm, relu); they are registered here, once, where missing. Where this
// LibTorch cannot build the model on the meta device at all, the ordinary CPU model is returned.
std::shared_ptr<Classifier> create_meta_model(const std::string& name, const ModelOptions& options);

}  // namespace odyssey
