// The NCCL backend on real GPUs: sums worked out by hand, in fp32 and bf16, through raw device
// buffers; a collective waits for the GPU work queued before it, not after. Skips where this
// build has no NCCL or the process sees no GPU (or fewer GPUs than ranks: NCCL refuses two ranks
// on one GPU).
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "dist/nccl_communicator.h"
#include "gpu_util.h"
#include "train/device.h"

using namespace odyssey;
using odyssey::testing::nccl_skip;

TEST(Nccl, AllReduceSumsOnTheGpu) {
  if (auto why = nccl_skip(/*needs_cuda_libtorch=*/false); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  auto* dev = device_collectives(*comm);
  ASSERT_NE(dev, nullptr);
  const int n = comm->size(), r = comm->rank();
  const int64_t count = (1 << 20) + 3;  // not a multiple of anything NCCL likes
  std::vector<float> host(count);
  for (int64_t i = 0; i < count; ++i) host[i] = static_cast<float>((r + 1) * (i % 7));
  float* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, count * sizeof(float)), cudaSuccess);
  cudaMemcpy(d, host.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  dev->allreduce_sum_device(d, count, DeviceDtype::kFloat32)->wait();
  cudaMemcpy(host.data(), d, count * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d);
  const float ranks_sum = n * (n + 1) / 2.0f;
  for (int64_t i = 0; i < count; i += 9973) EXPECT_EQ(host[i], ranks_sum * (i % 7)) << i;
  EXPECT_EQ(host[count - 1], ranks_sum * ((count - 1) % 7));
  // Host tensors still go through MPI on the same communicator.
  EXPECT_EQ(comm->allreduce_min(10 + r), 10);
}

// Gradient buckets overlap the backward pass only if each all-reduce waits for the work queued
// before it was submitted, not for everything queued by the time the communication thread gets
// to it. Here that thread is held by a first all-reduce behind ~1 unit of matrix products; a
// second is submitted, then ~2 more units are queued: it must complete with the first (~1 unit),
// not after them (~3).
TEST(Nccl, ACollectiveWaitsOnlyForTheWorkQueuedBeforeIt) {
  if (auto why = nccl_skip(); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  const torch::Device gpu(torch::kCUDA, device_collectives(*comm)->device());
  using odyssey::testing::Clock;
  const auto since = odyssey::testing::seconds_since;
  const odyssey::testing::MatrixWork work(gpu);
  auto busy = [&](int units) { work.queue(30 * units); };
  auto x = torch::ones({1 << 20}, torch::TensorOptions().device(gpu));
  auto y = torch::ones({1 << 20}, torch::TensorOptions().device(gpu));
  busy(1);
  comm->allreduce_sum_async(x)->wait();  // warm-up: NCCL's first collective sets up its channels
  torch::cuda::synchronize();
  x.fill_(1);
  torch::cuda::synchronize();
  auto t0 = Clock::now();
  busy(1);
  torch::cuda::synchronize();
  const double unit = since(t0);
  comm->barrier();
  t0 = Clock::now();
  busy(1);
  auto first = comm->allreduce_sum_async(x);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the thread now waits on `first`
  auto second = comm->allreduce_sum_async(y);
  busy(2);
  second->wait();
  const double second_done = since(t0);
  first->wait();
  torch::cuda::synchronize();
  const double all_done = since(t0);
  std::printf("unit of products %.3f s; second all-reduce done after %.3f s, all work after "
              "%.3f s\n", unit, second_done, all_done);
  EXPECT_LT(second_done, 1.8 * unit);
  EXPECT_GT(all_done, 2.5 * unit);
  const double n = comm->size();
  EXPECT_EQ(x.min().item<double>(), n);
  EXPECT_EQ(y.max().item<double>(), n);
}

// Collectives submitted together are all enqueued at once and complete in submission order: each
// `then` runs after its own sum, in order, and launches a kernel on the communication thread (a
// copy of the sum, as dist.compress's copy back does: it fails if a "not ready" poll is left in
// CUDA's last-error slot); every sum is right. seconds() is the collective's own GPU time, not
// the compute queued before it (~1 unit here: the old one-at-a-time thread counted it). At one
// rank a sum leaves its buffer as it was, so the values check the ordering only at 2+ GPUs.
TEST(Nccl, QueuedCollectivesCompleteInOrderAndTimeOnlyThemselves) {
  if (auto why = nccl_skip(); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  const torch::Device gpu(torch::kCUDA, device_collectives(*comm)->device());
  const odyssey::testing::MatrixWork work(gpu);
  auto warm = torch::ones({16}, torch::TensorOptions().device(gpu));
  comm->allreduce_sum_async(warm)->wait();  // NCCL's first collective sets up its channels
  torch::cuda::synchronize();
  auto t0 = odyssey::testing::Clock::now();
  work.queue(30);
  torch::cuda::synchronize();
  const double unit = odyssey::testing::seconds_since(t0);

  const int k = 64;
  const double n = comm->size();
  std::vector<torch::Tensor> xs;
  for (int i = 0; i < k; ++i)
    xs.push_back(torch::full({1000 + i}, i + 1.0, torch::TensorOptions().device(gpu)));
  std::vector<int> order;   // appended on the communication thread only
  std::vector<torch::Tensor> copies(k);
  std::vector<WorkHandle> works;
  comm->barrier();
  work.queue(30);  // ~1 unit ahead of every collective
  for (int i = 0; i < k; ++i) {
    works.push_back(comm->allreduce_sum_async(xs[i], [&, i] {
      order.push_back(i);
      copies[i] = xs[i].clone();  // a kernel queued, not waited for (follow-ups must not wait)
    }));
  }
  double longest = 0;
  for (auto& w : works) {
    w->wait();
    longest = std::max(longest, w->seconds());
  }
  std::printf("unit of products %.3f s; longest of %d collectives %.6f s\n", unit, k, longest);
  ASSERT_EQ(order.size(), static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(order[i], i);
    ASSERT_TRUE(copies[i].defined()) << i;
    EXPECT_EQ(copies[i].min().item<double>(), n * (i + 1)) << i;
    EXPECT_EQ(xs[i].max().item<double>(), n * (i + 1)) << i;
  }
  EXPECT_LT(longest, 0.3 * unit);
}

// allreduce_sum_queued (SyncBatchNorm's statistics) returns while an earlier collective still
// waits behind ~2 units of GPU work (the host does not wait for the sum), and the work queued
// after it on the default stream sees the summed values (a check that bites at 2+ GPUs only).
TEST(Nccl, AQueuedSumOrdersTheDeviceNotTheHost) {
  if (auto why = nccl_skip(); !why.empty()) GTEST_SKIP() << why;
  auto comm = make_communicator("nccl", true);
  const torch::Device gpu(torch::kCUDA, device_collectives(*comm)->device());
  const odyssey::testing::MatrixWork work(gpu);
  auto x = torch::ones({1 << 16}, torch::TensorOptions().device(gpu));
  auto y = torch::ones({1 << 16}, torch::TensorOptions().device(gpu));
  comm->allreduce_sum_async(x)->wait();  // warm-up
  x.fill_(1);
  torch::cuda::synchronize();
  auto t0 = odyssey::testing::Clock::now();
  work.queue(30);
  torch::cuda::synchronize();
  const double unit = odyssey::testing::seconds_since(t0);
  comm->barrier();
  t0 = odyssey::testing::Clock::now();
  work.queue(60);
  auto first = comm->allreduce_sum_async(x);
  comm->allreduce_sum_queued(y);
  const double returned = odyssey::testing::seconds_since(t0);
  auto z = y * 2;  // on the default stream, after the sum
  first->wait();
  const double n = comm->size();
  std::printf("unit of products %.3f s; queued sum returned after %.4f s\n", unit, returned);
  EXPECT_LT(returned, 0.5 * unit);
  EXPECT_EQ(z.min().item<double>(), 2 * n);
  EXPECT_EQ(z.max().item<double>(), 2 * n);
  EXPECT_EQ(x.min().item<double>(), n);
}
