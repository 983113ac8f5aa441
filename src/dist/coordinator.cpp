#include "dist/coordinator.h"

#include <torch/torch.h>

#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>

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
std::atomic<bool> g_armed{false};

// A stop signal on any thread: before arm_stop_signals(), what the default action would do
// (end the process by that signal); after, the flag the trainer reads, and a second SIGINT ends
// the process at once. Async-signal-safe: it also runs as the handler.
void take_stop_signal(int sig) {
  if (!g_armed.load()) {
    std::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    // Blocked here (in the waiter, or within its own handler): pending until unblocked, then
    // the default action.
    raise(sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    return;
  }
  if (sig == SIGINT && stop_signal() == SIGINT) std::_Exit(130);  // second Ctrl-C: now
  record_stop_signal(sig);
}

extern "C" void on_stop_signal(int sig) { take_stop_signal(sig); }

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kStopSignals) sigaddset(&set, sig);
  return set;
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : kStopSignals) sigaction(sig, &sa, nullptr);
}
}  // namespace

void route_stop_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The handler, for the threads that began before this call and so do not block the signals
    // (OpenBLAS starts its pool when it is loaded): none of them runs oneDNN's products.
    install_handler();
    const sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread started from here on
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0) take_stop_signal(sig);
      }
    }).detach();
  });
}

void arm_stop_signals() {
  route_stop_signals();
  install_handler();  // again: MPI_Init may have installed its own since
  g_armed.store(true);
}

}  // namespace odyssey
