// agree(): runs a setup step on every rank and makes its failure collective. If any rank throws
// (odyssey::Error, a filesystem error naming a path, or any other exception), the lowest failing
// rank prints its message and every rank throws AgreedFailure, so all exit with the same code
// and no rank waits forever in a collective. Training's setup also stops here for a stop signal
// (recorded once armed, or StopRequested thrown by a long part of the step, common/
// stop_request.h): every rank throws AgreedFailure with exit 75, an error on any rank taking
// precedence. Only setup calls agree(): the training loop takes its signals at its steps.
// The step must not call a collective after anything that can fail on some ranks only, unless
// that part runs in an agree() of its own (its AgreedFailure passes through the outer one).
#pragma once

#include <functional>
#include <stdexcept>

#include "dist/communicator.h"

namespace odyssey {

struct AgreedFailure : std::runtime_error {
  AgreedFailure(int failing_rank, int code)
      : std::runtime_error("a rank failed during setup"), rank(failing_rank), exit_code(code) {}
  int rank;
  // The failing rank's: kExitUsage for a UsageError, kExitUserError for another odyssey::Error or
  // a std::filesystem error (permissions, I/O), kExitInternal for any other exception;
  // kExitPreempted where no rank failed and one was sent a stop signal.
  int exit_code;
};

void agree(Communicator& comm, const std::function<void()>& step);

}  // namespace odyssey
