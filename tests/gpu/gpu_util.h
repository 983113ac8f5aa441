// Helpers shared by the GPU tests.
#pragma once

#include <mpi.h>

namespace odyssey::testing {

// Ranks in the job, asked of MPI directly: a test must know before creating an NCCL
// communicator, which refuses two ranks on one GPU, whether every rank has a GPU of its own.
inline int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

}  // namespace odyssey::testing
