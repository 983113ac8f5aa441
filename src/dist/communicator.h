// Communicator: the collectives the trainer needs, behind one interface with an MPI backend and
// a single-process backend (so the whole trainer runs in one process without mpirun).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>

namespace odyssey {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;

  // In-place sum over ranks of a contiguous CPU tensor (float32, float64 or int64).
  virtual void allreduce_sum(torch::Tensor& tensor) = 0;
  // In-place broadcast of a contiguous CPU tensor from root.
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void broadcast(std::string& text, int root) = 0;
  // Smallest value over ranks; the control plane's agreement primitive.
  virtual int64_t allreduce_min(int64_t value) = 0;
  virtual void barrier() = 0;
};

// backend: "auto" (MPI when the job has several ranks, else single), "mpi", "single".
std::unique_ptr<Communicator> make_communicator(const std::string& backend, bool mpi_initialised);

}  // namespace odyssey
