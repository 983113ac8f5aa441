#include "dist/coordinator.h"

#include <torch/torch.h>

#include <csignal>
#include <cstdlib>

namespace odyssey {

namespace {
constexpr int kStopSignals[] = {SIGTERM, SIGUSR1, SIGINT};
}

ControlFlags Coordinator::agree(const ControlFlags& local) {
  if (comm_.size() == 1) return local;
  // One count per stop signal, then one per request: one all-reduce of 6 integers.
  auto t = torch::zeros({6}, torch::kLong);
  auto a = t.accessor<int64_t, 1>();
  for (int i = 0; i < 3; ++i) a[i] = local.signal == kStopSignals[i];
  a[3] = local.non_finite;
  a[4] = local.checkpoint_now;
  a[5] = local.checkpoint_failed;
  comm_.allreduce_sum(t);
  ControlFlags agreed;
  for (int i = 0; i < 3 && !agreed.signal; ++i)
    if (a[i] > 0) agreed.signal = kStopSignals[i];
  agreed.non_finite = a[3] > 0;
  agreed.checkpoint_now = a[4] > 0;
  agreed.checkpoint_failed = a[5] > 0;
  return agreed;
}

namespace {
std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && g_signal.load() == SIGINT) std::_Exit(130);  // second Ctrl-C: now
  g_signal.store(sig);
}
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) sigaction(sig, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }

}  // namespace odyssey
