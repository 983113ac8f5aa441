#include "dist/agreement.h"

#include <filesystem>

#include "common/error.h"
#include "common/exit_codes.h"
#include "common/log.h"

namespace odyssey {

void agree(Communicator& comm, const std::function<void()>& step) {
  // What a failure was, in the order the exit codes rank them: the lowest failing rank's counts.
  enum Kind : int64_t { kUsage = 0, kUser = 1, kInternal = 2, kNone = 3 };
  std::string message;
  Kind kind = kNone;
  try {
    step();
  } catch (const AgreedFailure&) {  // an agreement inside the step failed on every rank alike
    throw;
  } catch (const UsageError& e) {
    kind = kUsage, message = e.what();
  } catch (const Error& e) {
    kind = kUser, message = e.what();
  } catch (const std::filesystem::filesystem_error& e) {  // the OS refused a path: permissions, I/O
    kind = kUser, message = e.what();
  } catch (const std::exception& e) {  // a library's (LibTorch, the standard library): a bug
    kind = kInternal, message = std::string("internal error: ") + e.what();
  }
  // The lowest failing rank and what its error was, in one collective.
  const int64_t min =
      comm.allreduce_min(kind == kNone ? kNone * comm.size() : kNone * comm.rank() + kind);
  const int64_t first = min / kNone;
  if (first == comm.size()) return;
  if (first == comm.rank()) log::error("{}", message);
  const int64_t k = min % kNone;
  throw AgreedFailure(static_cast<int>(first), k == kUsage ? kExitUsage : k == kUser ? kExitUserError : kExitInternal);
}

}  // namespace odyssey
