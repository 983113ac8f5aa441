// Helpers shared by the distributed tests.
#pragma once

#include <torch/torch.h>

#include <algorithm>

#include "train/optimizer.h"

namespace odyssey::testing {

// A module's parameters with their names, as the optimizers take them.
inline NamedTensors named_params(torch::nn::Module& m) {
  NamedTensors out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

// Largest absolute difference relative to b's largest magnitude.
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

}  // namespace odyssey::testing
