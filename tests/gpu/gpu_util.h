// Helpers shared by the GPU tests.
#pragma once

#include <mpi.h>

#include <chrono>

namespace odyssey::testing {

// Ranks in the job, asked of MPI directly: a test must know before creating an NCCL
// communicator, which refuses two ranks on one GPU, whether every rank has a GPU of its own.
inline int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// This rank's GPU, as the trainer picks it (rank mod visible GPUs on one node): ranks of a
// several-GPU machine test their own GPU, not all GPU 0.
inline int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace odyssey::testing
