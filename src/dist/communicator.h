// Communicator: the collectives the trainer needs, behind one interface with an MPI backend and
// a single-process backend (so the whole trainer runs in one process without mpirun).
//
// Every collective has an asynchronous form returning a Work handle; the blocking form is the
// asynchronous one followed by wait(). Every rank issues the identical sequence of collectives;
// each gets a sequence number, which the watchdog uses to say who did not arrive where.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace odyssey {

// A collective in flight. wait() returns when it completed on this rank and throws Error when it
// failed; seconds() is how long the collective itself ran (not counting time queued behind
// others).
class Work {
 public:
  void wait();
  bool done() const;
  double seconds() const;

  // Backend side.
  void finish(double seconds, std::string error = {});

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  double seconds_ = 0;
  std::string error_;
};
using WorkHandle = std::shared_ptr<Work>;

struct CommOptions {
  double timeout_s = 300;        // a collective that takes longer ends the job (watchdog)
  double first_timeout_s = 900;  // the same until the first training step completed
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;

  // In-place sum over ranks of a contiguous CPU tensor (float32, float64, int64, bfloat16 or
  // float16; 16-bit floats are summed in float32 and rounded once per reduction step). The
  // tensor must stay alive and untouched until the Work completes. `then`, when given, runs on
  // the communication thread right after the sum (e.g. averaging), before the Work completes.
  virtual WorkHandle allreduce_sum_async(const torch::Tensor& tensor,
                                         std::function<void()> then = {}) = 0;
  // In-place broadcast of a contiguous CPU tensor from root.
  virtual WorkHandle broadcast_async(const torch::Tensor& tensor, int root) = 0;
  virtual void broadcast(std::string& text, int root) = 0;
  // Smallest value over ranks; the control plane's agreement primitive.
  virtual int64_t allreduce_min(int64_t value) = 0;
  virtual void barrier() = 0;
  // Watchdog limits from now on (the trainer relaxes them until its first step is done).
  virtual void set_timeout(double seconds) {}

  void allreduce_sum(torch::Tensor& tensor) { allreduce_sum_async(tensor)->wait(); }
  // In-place sum whose result the device's later work sees without the host waiting for it:
  // returns once the work queued after this call on the tensor's device (its default stream) is
  // ordered after the sum. For values the next kernels need (SyncBatchNorm's statistics), so the
  // GPU's queue is not drained at every layer. NCCL does so for CUDA tensors; every other case is
  // the blocking allreduce_sum. A failure of the sum itself surfaces at the next collective
  // waited for (the communicator is aborted).
  virtual void allreduce_sum_queued(torch::Tensor& tensor) { allreduce_sum(tensor); }
  void broadcast(torch::Tensor& tensor, int root) { broadcast_async(tensor, root)->wait(); }
};

// backend: "auto" (MPI when the job has several ranks, else single), "mpi", "single", "nccl"
// (CUDA tensors over NCCL, host ones over MPI; see nccl_communicator.h).
std::unique_ptr<Communicator> make_communicator(const std::string& backend, bool mpi_initialised,
                                                const CommOptions& options = {});

}  // namespace odyssey
