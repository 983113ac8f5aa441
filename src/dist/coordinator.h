// Coordinator: the per-step control plane. Once per step every rank contributes its local
// requests (a stop signal arrived, the loss is not finite, checkpoint now, a checkpoint write
// failed) to one tiny all-reduce, so all ranks
// take the same decision at the same step.
#pragma once

#include <atomic>
#include <cstdint>

#include "dist/communicator.h"

namespace odyssey {

struct ControlFlags {
  int signal = 0;           // a stop signal some rank received (SIGTERM, SIGUSR1, SIGINT), or 0
  bool non_finite = false;  // some rank saw a NaN or infinite loss this step
  bool checkpoint_now = false;     // checkpoint after this step (rank 0's checkpoint timer)
  bool checkpoint_failed = false;  // rank 0's checkpoint writer reported a failed write
  bool stop() const { return signal != 0; }
};

class Coordinator {
 public:
  explicit Coordinator(Communicator& comm) : comm_(comm) {}
  // All ranks, once per step: the OR of every rank's flags.
  ControlFlags agree(const ControlFlags& local);

 private:
  Communicator& comm_;
};

// Signal handling for preemption: SIGTERM, SIGUSR1 and SIGINT set a flag the trainer reads once
// per step (the handler does nothing else). A second SIGINT ends the process at once.
void install_stop_signal_handlers();
int stop_signal();  // the signal received, 0 if none

}  // namespace odyssey
