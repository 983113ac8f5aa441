// Freezing parameters for transfer learning (model.freeze): matching parameters lose
// requires_grad, so they get no gradient, no optimizer state and no all-reduce; BatchNorm layers
// whose parameters are frozen keep their running statistics fixed too.
#pragma once

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "train/optimizer.h"

namespace odyssey {

// Freezes the parameters whose names match any pattern (* and ?, as shell globs); returns the
// trainable rest, in order. A pattern that matches no parameter is an error naming it (key
// model.freeze in source).
NamedTensors freeze_parameters(const NamedTensors& params, const std::vector<std::string>& patterns,
                               const std::string& source);

// module.train(), then eval mode for every BatchNorm whose weight is frozen.
void set_train_mode(torch::nn::Module& module);

}  // namespace odyssey
