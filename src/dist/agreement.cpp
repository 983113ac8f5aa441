#include "dist/agreement.h"

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/log.h"

namespace odyssey {

void agree(Communicator& comm, const std::function<void()>& step) {
  std::string message;
  bool failed = false, usage = false;
  try {
    step();
  } catch (const Error& e) {
    failed = true;
    usage = dynamic_cast<const UsageError*>(&e) != nullptr;
    message = e.what();
  }
  // The lowest failing rank and whether its error was a usage error, in one collective.
  const int64_t min = comm.allreduce_min(failed ? 2 * comm.rank() + (usage ? 0 : 1) : 2 * comm.size());
  const int64_t first = min / 2;
  if (first == comm.size()) return;
  if (first == comm.rank()) log::error("{}", message);
  throw AgreedFailure(static_cast<int>(first), min % 2 == 0 ? kExitUsage : kExitUserError);
}

}  // namespace odyssey
