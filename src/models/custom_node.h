// For Odyssey's own autograd nodes (models/*.cpp): their backward passes compute with raw
// pointers outside autograd, so under a backward with create_graph their gradients would come out
// as constants and every second derivative through them would be silently zero. Each such
// backward calls this first.
#pragma once

#include <torch/torch.h>

#include <string>

#include "common/error.h"

namespace odyssey {

// op: the operator's name; hint: how to train without it.
inline void first_derivative_only(const std::string& op, const char* hint) {
  ODY_CHECK(!torch::GradMode::is_enabled(),
            op + " has no second derivative (backward with create_graph)", hint);
}

}  // namespace odyssey
