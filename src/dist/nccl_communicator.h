// NcclCommunicator: the Communicator for CUDA tensors. NCCL moves gradients between GPUs; host
// tensors and the control plane (agreement, broadcasts of text, barriers) go through an MPI
// communicator it owns, so a job has one ordered stream of host collectives as before.
//
// Setup: rank 0 creates the ncclUniqueId and MPI_Bcast sends it; every rank selects device
// local_rank mod (visible GPUs) and calls ncclCommInitRank. Collectives run on the
// communicator's own CUDA stream, each ordered after the work queued on the legacy default
// stream (where LibTorch computes unless told otherwise) when it was submitted. One thread
// enqueues them as they come (several in flight, back to back on the stream) and sees them
// complete in order; the oldest exceeding the watchdog limit, or an NCCL error, aborts the
// communicator (ncclCommAbort) and fails every collective in flight with an error naming it.
// Built when CMake finds CUDA and NCCL (ODYSSEY_WITH_NCCL); runs only where a GPU is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace odyssey {

// Whether this build has NCCL, and how many GPUs this process sees (0 without NCCL or GPUs).
bool nccl_compiled();
int visible_gpus();

enum class DeviceDtype { kFloat32, kBFloat16, kFloat16 };

class DeviceCollectives {
 public:
  virtual ~DeviceCollectives() = default;
  virtual int device() const = 0;
  // In-place sum over ranks of `count` elements at a device pointer (tests and raw buffers).
  virtual WorkHandle allreduce_sum_device(void* data, int64_t count, DeviceDtype dtype) = 0;
};

// Collective over MPI_COMM_WORLD (every rank calls it). Throws Error without NCCL or a GPU.
// The returned object is both a Communicator and DeviceCollectives.
std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, int local_rank);
DeviceCollectives* device_collectives(Communicator& comm);  // nullptr unless NCCL

// The MPI backend itself (communicator.cpp), for composing.
std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options);

}  // namespace odyssey
