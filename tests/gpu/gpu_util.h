// Helpers shared by the GPU tests.
#pragma once

#include <mpi.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <string>

#include "dist/nccl_communicator.h"
#include "train/device.h"

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

// Why a test of the NCCL backend cannot run here, empty when it can: no NCCL in this build, no
// CUDA LibTorch or GPU (for tests that compute with LibTorch on the GPU; raw-buffer tests need
// only a GPU), or fewer GPUs than ranks. Use: if (auto why = nccl_skip(); !why.empty())
// GTEST_SKIP() << why;
inline std::string nccl_skip(bool needs_cuda_libtorch = true) {
  if (!nccl_compiled()) return "built without NCCL";
  if (needs_cuda_libtorch && !cuda_usable()) return "LibTorch without CUDA, or no GPU";
  if (visible_gpus() < 1) return "no GPU";
  if (visible_gpus() < world_size()) return "fewer GPUs than ranks";
  return {};
}

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// GPU work the timing tests queue ahead of what they time: products of one 4096 x 4096 float
// matrix on the current stream. The host only queues them; the GPU takes ~1 ms or more each.
class MatrixWork {
 public:
  explicit MatrixWork(torch::Device gpu)
      : a_(torch::randn({4096, 4096}, torch::TensorOptions().device(gpu))) {}
  void queue(int products) const {
    torch::Tensor c;
    for (int i = 0; i < products; ++i) c = a_.mm(a_);
  }

 private:
  torch::Tensor a_;
};

// How long `call` keeps the host with `products` matrix products queued ahead of it on the GPU,
// against the GPU time of those products (measured first): a call that only queues work takes a
// small part of it, one that waits for the GPU all of it.
struct QueuedCall {
  double host_s = 0, gpu_s = 0;
};
template <typename F>
QueuedCall time_behind_queued_work(torch::Device gpu, F&& call, int products = 40) {
  const MatrixWork work(gpu);
  work.queue(1);
  torch::cuda::synchronize();
  auto t0 = Clock::now();
  work.queue(products);
  torch::cuda::synchronize();
  QueuedCall r;
  r.gpu_s = seconds_since(t0);
  work.queue(products);
  t0 = Clock::now();
  call();
  r.host_s = seconds_since(t0);
  torch::cuda::synchronize();
  return r;
}

}  // namespace odyssey::testing
