// agree(): runs a setup step on every rank and makes its failure collective. If any rank throws
// odyssey::Error, the lowest failing rank prints its message and every rank throws
// AgreedFailure, so all exit with the same code and no rank waits forever in a collective.
// The step must not call a collective after anything that can fail on some ranks only.
#pragma once

#include <functional>
#include <stdexcept>

#include "dist/communicator.h"

namespace odyssey {

struct AgreedFailure : std::runtime_error {
  AgreedFailure(int failing_rank, int code)
      : std::runtime_error("a rank failed during setup"), rank(failing_rank), exit_code(code) {}
  int rank;
  int exit_code;  // the failing rank's: kExitUsage for a UsageError, else kExitUserError
};

void agree(Communicator& comm, const std::function<void()>& step);

}  // namespace odyssey
