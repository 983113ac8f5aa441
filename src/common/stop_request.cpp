#include "common/stop_request.h"

#include <atomic>
#include <string>

namespace odyssey {

namespace {
std::atomic<int> g_signal{0};
}

int stop_signal() { return g_signal.load(); }

void record_stop_signal(int sig) { g_signal.store(sig); }

StopRequested::StopRequested(int sig)
    : std::runtime_error("stopped by signal " + std::to_string(sig)), signal(sig) {}

void stop_if_requested() {
  if (const int sig = stop_signal()) throw StopRequested(sig);
}

}  // namespace odyssey
