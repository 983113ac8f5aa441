// Helpers for Odyssey's own autograd nodes (models/*.cpp).
#pragma once

#include <torch/torch.h>

#include <string>

#include "common/error.h"

namespace odyssey {

// Their backward passes compute with raw pointers outside autograd, so under a backward with
// create_graph their gradients would come out as constants and every second derivative through
// them would be silently zero. Each such backward calls this first. op: the operator's name;
// hint: how to train without it.
inline void first_derivative_only(const std::string& op, const char* hint) {
  ODY_CHECK(!torch::GradMode::is_enabled(),
            op + " has no second derivative (backward with create_graph)", hint);
}

// Whether x's memory is channels-last and not also NCHW-contiguous (a one-channel or 1x1 image
// batch is both: its kernels take the NCHW path).
inline bool is_channels_last(const torch::Tensor& x) {
  return !x.is_contiguous() && x.is_contiguous(torch::MemoryFormat::ChannelsLast);
}

}  // namespace odyssey
