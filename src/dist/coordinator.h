// Coordinator: the per-step control plane. Once per step every rank contributes its local
// requests (a stop signal arrived, the loss is not finite, checkpoint now, a checkpoint write
// failed) to one tiny all-reduce, so all ranks
// take the same decision at the same step.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/stop_request.h"  // stop_signal()
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
// per step. A second SIGINT ends the process at once.
//
// No handler runs on a thread that computes: oneDNN 2.x's JIT-compiled f32 GEMM kernels (Debian's
// LibTorch links oneDNN 2.6; Odyssey's matrix products and LibTorch's own call them) point the
// stack pointer into a heap workspace, and a signal frame written there corrupts the heap
// (oneDNN issue 4845, fixed in oneDNN 3.x): a preempted run crashed instead of saving its
// checkpoint. route_stop_signals(), first thing in main() before any thread starts, blocks the
// three signals in the calling thread, so every thread started later (MPI's, OpenMP's, the
// loader's, the reducer's) inherits the block, and takes them with sigwait() in a thread of its
// own. Until arm_stop_signals() (training arms it first thing in main, before MPI_Init, and again
// after it, whose handlers may replace ours) a stop signal ends the
// process as its default action would; from then on it is recorded (common/stop_request.h):
// setup stops at its next agreement with exit 75 and nothing to save, training at its next step
// with a checkpoint.
void route_stop_signals();
void arm_stop_signals();  // from here on, stop signals are recorded (calls route_stop_signals())

}  // namespace odyssey
