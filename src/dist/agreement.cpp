#include "dist/agreement.h"

#include "common/error.h"
#include "common/log.h"

namespace odyssey {

void agree(Communicator& comm, const std::function<void()>& step) {
  std::string message;
  bool failed = false;
  try {
    step();
  } catch (const Error& e) {
    failed = true;
    message = e.what();
  }
  const int64_t first = comm.allreduce_min(failed ? comm.rank() : comm.size());
  if (first == comm.size()) return;
  if (first == comm.rank()) log::error("{}", message);
  throw AgreedFailure(static_cast<int>(first));
}

}  // namespace odyssey
