#include "train/freeze.h"

#include <fnmatch.h>
#include <torch/torch.h>

#include "common/error.h"
#include "models/batch_norm.h"

namespace odyssey {

NamedTensors freeze_parameters(const NamedTensors& params, const std::vector<std::string>& patterns,
                               const std::string& source) {
  std::vector<bool> used(patterns.size(), false);
  NamedTensors trainable;
  for (const auto& [name, p] : params) {
    bool frozen = false;
    for (size_t i = 0; i < patterns.size(); ++i)
      if (fnmatch(patterns[i].c_str(), name.c_str(), 0) == 0) frozen = used[i] = true;
    if (frozen)
      p.set_requires_grad(false);
    else
      trainable.emplace_back(name, p);
  }
  for (size_t i = 0; i < patterns.size(); ++i)
    ODY_CHECK(used[i],
              source + ": model.freeze pattern \"" + patterns[i] + "\" matches no parameter",
              "parameter names are torchvision's state_dict keys: `trainer models NAME` lists them");
  ODY_CHECK(!trainable.empty(), source + ": model.freeze leaves no parameter to train", "");
  return trainable;
}

void set_train_mode(torch::nn::Module& module) {
  module.train(true);
  // The zoo's BatchNorm and LibTorch's (models built outside the zoo).
  auto frozen = [](const torch::Tensor& w) { return w.defined() && !w.requires_grad(); };
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* bn = m->as<BatchNorm2dImpl>()) {
      if (frozen(bn->weight)) bn->eval();
    } else if (auto* tbn = m->as<torch::nn::BatchNorm2dImpl>()) {
      if (frozen(tbn->weight)) tbn->eval();
    }
  }
}

}  // namespace odyssey
