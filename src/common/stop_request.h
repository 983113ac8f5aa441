// The stop signal a training process was sent (SIGTERM, SIGUSR1 or SIGINT: a preemption, a
// requeue, Ctrl-C), as dist/coordinator's signal routing records it once training has armed it.
// The training loop reads it once per step and stops with a checkpoint; setup (before the first
// step: reading the data into memory, loading the checkpoint to resume from) stops where it is
// with nothing to save, through StopRequested and agree() (dist/agreement.h).
#pragma once

#include <stdexcept>

namespace odyssey {

int stop_signal();  // the signal received, 0 if none (always 0 where training has not armed it)
void record_stop_signal(int sig);  // async-signal-safe

struct StopRequested : std::runtime_error {
  explicit StopRequested(int sig);
  int signal;
};

// Throws StopRequested when a stop signal has been recorded: for the long parts of setup.
void stop_if_requested();

}  // namespace odyssey
