#include "dist/agreement.h"

#include <filesystem>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/log.h"
#include "common/stop_request.h"

namespace odyssey {

namespace {
std::string stop_message(int sig, int64_t rank, int64_t size) {
  return "stopped by signal " + std::to_string(sig) +
         (size > 1 ? " (rank " + std::to_string(rank) + ")" : std::string()) +
         " during setup, before the first step: nothing trained to save; exit 75, so a requeue "
         "resumes from the newest checkpoint (with train.resume = \"auto\")";
}
}  // namespace

void agree(Communicator& comm, const std::function<void()>& step) {
  // What a failure was, in the order the exit codes rank them, then a stop signal (training's
  // setup: recorded, or StopRequested from a long part of the step).
  enum Kind : int64_t { kUsage = 0, kUser = 1, kInternal = 2, kStop = 3, kNone = 4 };
  std::string message;
  Kind kind = kNone;
  int sig = 0;  // with kStop
  try {
    step();
    if ((sig = stop_signal())) kind = kStop;
  } catch (const AgreedFailure&) {  // an agreement inside the step failed on every rank alike
    throw;
  } catch (const StopRequested& e) {
    kind = kStop, sig = e.signal;
  } catch (const UsageError& e) {
    kind = kUsage, message = e.what();
  } catch (const Error& e) {
    kind = kUser, message = e.what();
  } catch (const std::filesystem::filesystem_error& e) {  // the OS refused a path: permissions, I/O
    kind = kUser, message = e.what();
  } catch (const std::exception& e) {  // a library's (LibTorch, the standard library): a bug
    kind = kInternal, message = std::string("internal error: ") + e.what();
  }
  // In one collective: the lowest rank that failed, else the lowest that was told to stop (an
  // error outranks a stop: the requeue would only meet it again), what it was, and the signal.
  constexpr int64_t kKinds = kNone + 1, kSignals = 65;  // signal numbers are below 65
  const int64_t size = comm.size(), rank = comm.rank();
  const int64_t order = kind == kNone ? 2 : kind == kStop ? 1 : 0;
  const int64_t min = comm.allreduce_min(((order * size + rank) * kSignals + sig) * kKinds + kind);
  const auto k = static_cast<Kind>(min % kKinds);
  if (k == kNone) return;
  const int64_t first = (min / kKinds / kSignals) % size;
  if (k == kStop) {
    log::info("{}", stop_message(static_cast<int>(min / kKinds % kSignals), first, size));  // rank 0 prints
    throw AgreedFailure(static_cast<int>(first), kExitPreempted);
  }
  if (first == rank) log::error("{}", message);
  throw AgreedFailure(static_cast<int>(first), k == kUsage  ? kExitUsage
                                               : k == kUser ? kExitUserError
                                                            : kExitInternal);
}

}  // namespace odyssey
